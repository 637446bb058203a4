"""What the ledger's mark costs a message: ``sending.send_batch`` with the null sender (each
digest built and marked, nothing sent) over N rows on a fresh PostgreSQL database
(BENCH_DATABASE_URL's server), worker CPU and wall time a message. It runs the code of the
tree on PYTHONPATH, so two checkouts compare in turn (docs/performance.md):

    cd TREE && PYTHONPATH=TREE python /path/to/benchmarks/mark_cost.py 4000
"""

import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from benchmarks.processes import fresh_postgres
from services.notifier import emails, ledger, senders, sending
from services.notifier.models import Story, Subscriber
from services.notifier.tokens import Tokens
from shared.db import make_engine, make_session_factory, session_scope
from shared.events import utcnow
from shared.migrations import upgrade


def main(N: int) -> None:
    url, drop = fresh_postgres()
    try:
        upgrade(Path("services/notifier/migrations"), url)
        engine = make_engine(url)
        confirmed = utcnow() - timedelta(days=1)
        with engine.begin() as conn:
            conn.execute(
                insert(Subscriber),
                [
                    {
                        "email": f"r{n}@example.org",
                        "frequency": "weekly",
                        "weekday": 0,
                        "city_ids": [],
                        "status": "confirmed",
                        "created_at": confirmed,
                        "confirmed_at": confirmed,
                        "soft_failures": 0,
                    }
                    for n in range(N)
                ],
            )
            conn.execute(
                insert(Story).values(
                    post_id=1,
                    title="t",
                    excerpt="e",
                    url="https://medium.com/p/0123456789ab",
                    image=None,
                    published_at=utcnow(),
                    received_at=utcnow() - timedelta(hours=1),
                    city_ids=[],
                )
            )
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            ids = [s.id for s in session.query(Subscriber)]
            claimed = ledger.claim(session, ids, "weekly:2026-W48", utcnow(), "x.example")
        settings = emails.MailSettings("S <news@x.example>", "https://x.example", Tokens("k"))
        started = time.perf_counter()
        cpu = time.process_time()
        for start in range(0, N, 200):
            sending.send_batch(
                engine, senders.NullSender(), claimed[start : start + 200], settings, utcnow()
            )
        wall = time.perf_counter() - started
        cpu_us = (time.process_time() - cpu) / N * 1e6
        print(f"{Path.cwd().name}: {N} messages, {wall / N * 1e6:.0f} us wall, {cpu_us:.0f} us CPU")
        engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
