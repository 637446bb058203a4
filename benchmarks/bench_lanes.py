"""Lanes as processes or as priorities: a notifier whose background queue holds an import's
24,629 events (in the relay's batches) takes subscriptions through its interactive lane
(``notifier.create_subscription`` as the gateway calls it, a write to the same SQLite database)
at a steady 10 a second until the events are handled, beside the same calls with nothing
queued. A process per lane (what `sistercities worker notifier` runs) against one process
consuming both queues, the interactive one first (kombu's priority order:
``benchmarks/priority_worker.py``); the default pool (2 threads), an SMTP sink for the
confirmation mails.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import redis

from benchmarks import processes
from benchmarks.bench_events import EVENTS, handled, import_payloads
from benchmarks.loadgen import Result
from benchmarks.report import Row
from shared.celery_app import make_celery
from shared.db import make_engine
from shared.errors import ServiceError
from shared.relay import BATCH_SIZE
from shared.rpc import ServiceClient
from shared.settings import CommonSettings, EnvReader

RATE = 10
DRAIN_TIMEOUT = 600.0
WORKERS = {
    "a process per lane": ["-m", "sistercities", "worker", "notifier"],
    "one process, interactive queue first": ["-m", "benchmarks.priority_worker"],
}


def measure(seconds: float = 10.0) -> list[Row]:
    rows = []
    for backend in ("SQLite", "PostgreSQL"):
        for label, argv in WORKERS.items():
            rows += _measure(backend, label, [sys.executable, *argv], seconds)
    return rows


def _measure(backend: str, label: str, argv: list[str], seconds: float) -> list[Row]:
    with processes.running_processes() as running, tempfile.TemporaryDirectory() as tmp:
        if backend == "SQLite":
            database_url, drop = f"sqlite:///{tmp}/notifier.db", None
        else:
            made = processes.fresh_postgres()
            if made is None:
                return [Row(f"{backend}: skipped", "no PostgreSQL server")]
            database_url, drop = made
        try:
            return _run(running, tmp, database_url, f"{backend}, {label}", argv, seconds)
        finally:
            if drop is not None:
                drop()


def _run(running, tmp: str, database_url: str, label: str, argv: list[str], seconds: float):
    redis_url = processes.start_redis(running)
    sink_port, _report, _pid = processes.start_smtp_sink(running, tmp, "smtp-sink")
    env = processes.service_env(
        redis_url,
        tmp,
        NOTIFIER_DATABASE_URL=database_url,
        SMTP_URL=f"smtp://127.0.0.1:{sink_port}",
    )
    subprocess.run(
        [sys.executable, "-m", "sistercities", "migrate", "notifier"],
        env=env,
        check=True,
        capture_output=True,
    )
    running.start("notifier", argv, env)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    caller = ServiceClient(client, timeout=2.0)
    processes.wait(lambda: _answers(caller), "the notifier", 60)
    idle = _calls(caller, "idle", lambda elapsed: elapsed >= seconds)
    engine = make_engine(database_url)
    _queue_import(env)
    started = time.perf_counter()
    busy = _calls(
        caller,
        "busy",
        lambda elapsed: handled(engine) >= EVENTS or elapsed > DRAIN_TIMEOUT,
    )
    drained = time.perf_counter() - started
    done = handled(engine)
    return [
        Row(
            f"{label}: subscriptions at {RATE}/s while the import's events are handled",
            _show(busy),
            f"nothing queued: {_show(idle)}",
            f"p99 {busy.p99_ms / idle.p99_ms:.1f}x",
        ),
        Row(
            f"{label}: the import's events handled",
            f"{done:,} in {drained:.1f} s, {done / drained:,.0f} events/s",
        ),
    ]


def _answers(caller: ServiceClient) -> bool:
    try:
        caller.call("notifier.ping_service", timeout=0.5)
        return True
    except ServiceError:
        return False


def _queue_import(env: dict[str, str]) -> None:
    """The relay's messages for the import: a batch of ``BATCH_SIZE`` events each."""
    app = make_celery("bench-relay", CommonSettings(**CommonSettings.read(EnvReader(env))))
    now = datetime.now(UTC).isoformat()
    envelopes = [
        {"id": str(uuid.uuid4()), "type": "directory.partnership_changed",
         "producer": "directory", "occurred_at": now, "payload": payload}
        for payload in import_payloads(list(range(1, 30_000)))
    ]  # fmt: skip
    with app.producer_or_acquire() as producer:
        for start in range(0, len(envelopes), BATCH_SIZE):
            app.send_task(
                "notifier.handle_events",
                args=[envelopes[start : start + BATCH_SIZE]],
                producer=producer,
            )


def _calls(caller: ServiceClient, phase: str, stop) -> Result:
    """Subscriptions at ``RATE`` a second, each a new address, latency from each one's
    scheduled time, until ``stop``."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(scheduled: float, n: int) -> None:
        nonlocal errors
        try:
            caller.call("notifier.create_subscription", f"lanes-{phase}-{n}@example.org")
        except ServiceError:
            with lock:
                errors += 1
            return
        with lock:
            latencies.append(time.perf_counter() - scheduled)

    started = time.perf_counter()
    n = 0
    with ThreadPoolExecutor(max_workers=32) as pool:
        while not stop(time.perf_counter() - started):
            scheduled = started + n / RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, scheduled, n)
            n += 1
    return Result(len(latencies), errors, time.perf_counter() - started, latencies)


def _show(result: Result) -> str:
    errors = f", {result.errors} unanswered in 2 s" if result.errors else ""
    return f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms{errors}"
