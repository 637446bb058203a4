"""Digests through worker kills: how many are lost or duplicated when both notifier workers are
SIGKILLed in the middle of a send and started again, and what staff's re-send of the rows
"sent, not acknowledged" brings back. Not part of `make bench` (it takes many minutes):

    python -m benchmarks.digest_kills [--runs 20] [--digests 2000] [--json FILE]

Each run: DIGESTS confirmed weekly subscribers on a fresh PostgreSQL database (BENCH_DATABASE_URL's
server), staff's "send now", both workers (2 threads each) SIGKILLed once a share of the
digests drawn between 20% and 70% has reached the SMTP server, started again; the batches the
dead workers held come back after the visibility timeout. Once every row is done, it counts at
the server: delivered (distinct recipients), duplicated (recipients reached twice), lost;
the ledger's rows sent without a recorded 250; then runs staff's re-send of those rows
(``sending.resend_unconfirmed``, as ``sistercities notifier digests resend-unconfirmed``
does, its settling time skipped: nothing is in flight by then) and counts again.

BENCH_WORKER_TREE runs the workers from another checkout of the code (an older commit, to
compare), with this checkout's migrations and re-send.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import delete, func, select

from benchmarks.processes import free_port, fresh_postgres, running_processes, start_redis
from services.notifier import digests, emails, sending
from services.notifier.config import load_settings
from services.notifier.ledger import SETTLING
from services.notifier.models import Delivery, Story, Subscriber
from services.notifier.senders import SmtpSender
from services.notifier.tokens import Tokens
from shared.celery_app import make_celery
from shared.db import make_engine, make_session_factory
from shared.events import utcnow
from shared.migrations import upgrade
from shared.settings import CommonSettings, EnvReader
from tests.faults.workloads import add_digest_readers

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "notifier" / "migrations"
SENDER = "Sister Cities <news@sistercities.example>"
WORKERS = 2
VISIBILITY_TIMEOUT = 20  # seconds: the dead workers' batches come back within a run


class Sink:
    """An SMTP server that keeps each message's recipients and Message-ID."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:
        message_id = ""
        for line in envelope.original_content[:8192].split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
                break
        with self.lock:
            self.received.extend((rcpt, message_id) for rcpt in envelope.rcpt_tos)
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.received)


@dataclass
class Run:
    digests: int
    killed_at: int  # messages at the server when both workers were killed
    delivered: int
    duplicated: int
    lost: int
    unconfirmed: int  # rows sent without a recorded 250
    unconfirmed_lost: int  # of those, never at the server
    resent: int
    delivered_after: int
    same_id_twice_after: int  # recipients holding the same Message-ID twice after the re-send
    other_duplicates_after: int  # a recipient reached twice with different Message-IDs
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--digests", type=int, default=2000)
    parser.add_argument("--json", help="write the runs here too")
    args = parser.parse_args()
    runs: list[Run] = []
    with running_processes() as processes, tempfile.TemporaryDirectory() as tmp:
        redis_url = start_redis(processes)
        postgres = fresh_postgres()
        if postgres is None:
            sys.exit("digest_kills needs a PostgreSQL server (BENCH_DATABASE_URL)")
        url, drop = postgres
        sink = Sink()
        sink.controller.start()
        try:
            upgrade(MIGRATIONS, url)
            env = _worker_env(redis_url, url, sink.port, tmp)
            for number in range(1, args.runs + 1):
                run = _one_run(processes, env, url, sink, number, args.digests)
                runs.append(run)
                print(_line(number, run), file=sys.stderr, flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))
        finally:
            sink.controller.stop()
            drop()
    print(table(runs))


def _worker_env(redis_url: str, database_url: str, smtp_port: int, tmp: str) -> dict[str, str]:
    return dict(
        os.environ, REDIS_URL=redis_url, DATA_DIR=tmp, NOTIFIER_DATABASE_URL=database_url,
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}", MAIL_FROM=SENDER,
        SECRET_KEY="bench-secret",  # noqa: S106 - a throwaway key for a throwaway run
        PUBLIC_BASE_URL="https://sistercities.example", LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1", WORKER_CONCURRENCY="2",
        TASK_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
    )  # fmt: skip


def _start_workers(processes, env: dict[str, str], number: int) -> list:
    tree = os.environ.get("BENCH_WORKER_TREE")
    command = [sys.executable, "-m", "sistercities", "worker", "notifier"]
    started = []
    for n in range(WORKERS):
        worker = processes.start(f"notifier-{number}-{n}", command, env, cwd=tree)
        started.append(worker)
    return started


def _one_run(processes, env, url, sink: Sink, number: int, count: int) -> Run:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    prefix = f"run{number}-"
    addresses = _fresh_readers(engine, count, prefix)
    celery = make_celery("bench", CommonSettings(**CommonSettings.read(EnvReader(env))))
    workers = _start_workers(processes, env, number)
    time.sleep(3)  # the workers start
    before = sink.count()
    started = time.perf_counter()
    kill_at = int(count * random.Random(number).uniform(0.2, 0.7))
    celery.send_task("notifier.schedule_digests", args=["weekly"], kwargs={"every": True})
    _until(lambda: sink.count() - before >= kill_at, 300, "the send to be under way")
    for worker in workers:
        os.killpg(worker.pid, signal.SIGKILL)
    killed_at = sink.count() - before
    for worker in workers:
        worker.wait()
    workers = _start_workers(processes, env, number)

    def done() -> bool:
        with sessions() as session:
            rows = session.scalar(select(func.count()).select_from(Delivery))
            claimed = session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "claimed")
            )
        return rows == count and claimed == 0

    _until(done, 600, "every digest to be done")
    _settled(sink)
    seconds = time.perf_counter() - started
    at_server = _ours(sink.snapshot(), prefix)
    reached = Counter(rcpt for rcpt, _id in at_server)
    with sessions() as session:
        unconfirmed = set(
            session.scalars(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(Delivery.status == "sent", Delivery.accepted_at.is_(None))
            )
        )
    period = digests.period_of("weekly", utcnow())
    with SmtpSender(f"smtp://127.0.0.1:{sink.port}") as sender:
        outcome = sending.resend_unconfirmed(
            engine, sender, period, _mail_settings(env), utcnow() + SETTLING
        )
    after = _ours(sink.snapshot(), prefix)
    ids_by_recipient: dict[str, list[str]] = {}
    for rcpt, message_id in after:
        ids_by_recipient.setdefault(rcpt, []).append(message_id)
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait()
    engine.dispose()
    return Run(
        digests=count,
        killed_at=killed_at,
        delivered=len(reached),
        duplicated=sum(1 for times in reached.values() if times > 1),
        lost=len(addresses - set(reached)),
        unconfirmed=len(unconfirmed),
        unconfirmed_lost=len(unconfirmed - set(reached)),
        resent=outcome.resent,
        delivered_after=len(ids_by_recipient),
        same_id_twice_after=sum(
            1 for ids in ids_by_recipient.values() if len(ids) > 1 and len(set(ids)) == 1
        ),
        other_duplicates_after=sum(1 for ids in ids_by_recipient.values() if len(set(ids)) > 1),
        seconds=round(seconds, 1),
    )


def _fresh_readers(engine, count: int, prefix: str) -> set[str]:
    """This run's subscribers and one story, the ledger emptied of the runs before."""
    with engine.begin() as conn:
        conn.execute(delete(Delivery))
        conn.execute(delete(Subscriber))
        conn.execute(delete(Story))
    return add_digest_readers(engine, count, prefix)


def _mail_settings(env: dict[str, str]) -> emails.MailSettings:
    """The workers' own, so a re-sent digest's links are signed as theirs are."""
    settings = load_settings(env)
    tokens = Tokens(settings.mail_token_key(), settings.legacy_link_key())
    return emails.MailSettings(settings.mail_from, settings.public_base_url, tokens)


def _ours(received: list[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    return [(rcpt, message_id) for rcpt, message_id in received if rcpt.startswith(prefix)]


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)


def _settled(sink: Sink, quiet: float = 3.0) -> None:
    """Until the server has taken nothing new for ``quiet`` seconds."""
    last, since = sink.count(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.2)
        if (now := sink.count()) != last:
            last, since = now, time.monotonic()


COLUMNS = (
    ("run", None),
    ("digests", "digests"),
    ("at the kill", "killed_at"),
    ("delivered", "delivered"),
    ("duplicated", "duplicated"),
    ("lost", "lost"),
    ("sent, not ack.", "unconfirmed"),
    ("of which lost", "unconfirmed_lost"),
    ("re-sent", "resent"),
    ("delivered after", "delivered_after"),
    ("same Message-ID twice after", "same_id_twice_after"),
    ("other duplicates after", "other_duplicates_after"),
)


def table(runs: list[Run]) -> str:
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "---:|" * len(COLUMNS),
    ]
    for number, run in enumerate(runs, start=1):
        cells = [str(number)] + [f"{getattr(run, field):,}" for _t, field in COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    totals = ["**total**"] + [
        f"**{sum(getattr(run, field) for run in runs):,}**" for _t, field in COLUMNS[1:]
    ]
    lines.append("| " + " | ".join(totals) + " |")
    return "\n".join(lines)


def _line(number: int, run: Run) -> str:
    return f"run {number}: " + ", ".join(f"{key} {value}" for key, value in asdict(run).items())


if __name__ == "__main__":
    main()
