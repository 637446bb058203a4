"""The workspace's list queries at size: a page of partnerships among 10,000 (the first, one
9,000 rows deep, one city's), a page of stories among 20,000 and a page of subscribers among
100,000 (the first, one 90,000 rows deep, the addresses starting with a common and a rare
prefix), in fresh PostgreSQL databases, median and worst of 50 calls of the service's
function (no task round trip, no page rendering).

    python -m benchmarks.workspace_lists   # BENCH_DATABASE_URL: a server to make them on
"""

import os
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from services.blog import story_visibility
from services.blog.models import Post
from services.directory import partnerships
from services.directory.models import City, Partnership
from services.notifier import subscriber_admin
from services.notifier.models import Subscriber
from shared.db import make_engine, make_session_factory
from shared.events import utcnow
from shared.migrations import upgrade


def main() -> None:
    root = Path(__file__).resolve().parents[1] / "services"
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    base = server.rsplit("/", 1)[0]
    names = {s: f"bench15_{s}_{uuid.uuid4().hex[:6]}" for s in ("directory", "blog", "notifier")}
    with admin.connect() as c:
        for n in names.values():
            c.execute(sa.text(f"CREATE DATABASE {n}"))
    try:
        urls = {s: f"{base}/{n}" for s, n in names.items()}
        for s, u in urls.items():
            upgrade(root / s / "migrations", u)
        d = make_engine(urls["directory"])
        b = make_engine(urls["blog"])
        n = make_engine(urls["notifier"])
        with d.begin() as c:
            c.execute(
                sa.insert(City.__table__),
                [
                    dict(
                        id=i,
                        name=f"City {i}",
                        country_code="US",
                        latitude=0,
                        longitude=0,
                        population=i,
                        source="staff",
                    )
                    for i in range(1, 2001)
                ],
            )
            rows = []
            for i in range(10_000):
                a, z = 1 + i % 2000, 1 + (i * 7 + 1 + i // 2000) % 2000
                if a == z:
                    z = 1 + z % 2000
                rows.append((min(a, z), max(a, z)))
            rows = sorted(set(rows))
            c.execute(
                sa.insert(Partnership.__table__),
                [dict(city_a_id=a, city_b_id=z, status="active") for a, z in rows],
            )
        print("partnerships", len(rows))
        now = utcnow()
        with b.begin() as c:
            c.execute(
                sa.insert(Post.__table__),
                [
                    dict(
                        key=f"k{i}",
                        title=f"T{i}",
                        url=f"https://e.org/{i}",
                        excerpt="e",
                        content_html="<p>x</p>",
                        tags=[],
                        reading_minutes=1,
                        published_at=now - timedelta(minutes=i),
                        content_hash=f"h{i}",
                        first_seen_at=now,
                        changed_at=now,
                        city_ids=[],
                        hidden=False,
                        announced=True,
                    )
                    for i in range(20_000)
                ],
            )
        with n.begin() as c:
            # Addresses spread over 26 first letters, 5,000 domains, mixed case.
            c.execute(
                sa.insert(Subscriber.__table__),
                [
                    dict(
                        email=f"{chr(97 + i % 26)}{'X' if i % 3 else 'x'}{i}@host{i % 5000}.org",
                        frequency="weekly",
                        weekday=0,
                        city_ids=[i % 2000 + 1] if i % 4 else [],
                        status=("confirmed", "pending", "unsubscribed")[i % 3],
                        created_at=now,
                        soft_failures=0,
                        confirmations=1,
                    )
                    for i in range(100_000)
                ],
            )
            c.execute(sa.text("ANALYZE subscribers"))
        print("subscribers", 100_000)
        ds, bs, ns = make_session_factory(d), make_session_factory(b), make_session_factory(n)

        def timed(fn):
            out = []
            for _ in range(50):
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1000)
            return statistics.median(out), max(out)

        with ds() as s:
            first = partnerships.list_partnerships(s, limit=50)
            deep = first["next_before_id"] - 9000
            print(
                "partnerships first page ms (median, max)",
                timed(lambda: partnerships.list_partnerships(s, limit=50)),
            )
            print(
                "partnerships deep page ms",
                timed(lambda: partnerships.list_partnerships(s, before_id=deep, limit=50)),
            )
            print(
                "partnerships of one city ms",
                timed(lambda: partnerships.list_partnerships(s, city_id=5, limit=50)),
            )
        with bs() as s:
            print(
                "stories first page ms", timed(lambda: story_visibility.list_for_staff(s, None, 25))
            )
        with ns() as s:
            first = subscriber_admin.find(s, limit=50)
            deep = first["next_before_id"] - 90_000
            print("subscribers first page ms", timed(lambda: subscriber_admin.find(s, limit=50)))
            print(
                "subscribers deep page ms",
                timed(lambda: subscriber_admin.find(s, before_id=deep, limit=50)),
            )
            print(
                "subscribers starting with 'q' (1 in 26) ms",
                timed(lambda: subscriber_admin.find(s, "Q", limit=50)),
            )
            print(
                "subscribers starting with 'zzz' (none) ms",
                timed(lambda: subscriber_admin.find(s, "zzz", limit=50)),
            )
            print(
                "subscribers starting with 'vx12345@' (one) ms",
                timed(lambda: subscriber_admin.find(s, "VX12345@", limit=50)),
            )
        d.dispose()
        b.dispose()
        n.dispose()
    finally:
        with admin.connect() as c:
            for n in names.values():
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)"))


if __name__ == "__main__":
    main()
