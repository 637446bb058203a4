"""Events beside visitors: one partnership import's 24,629 events relayed to the notifier and
handled, and City Search and subscribe through the gateway meanwhile, beside the same with no
import, on the embedded defaults (SQLite, Redis on this host) and on PostgreSQL.

Starts Redis, an SMTP sink, the gateway (cache off), the directory and notifier workers with
their default pools and the outbox relay. Loads GeoNames' cities of 15,000 people or more into
the directory (the search's data). Then, twice: City Search (at a steady 40 requests/s) and
subscribe (10 a second, a new address each) for the run's length, first idle, then from the
moment the import's events are committed to the directory's outbox (at once, and the relay
woken, as a service does after a commit: the import's own time is not counted). They settle
when the notifier's handled-event ledger holds all of them; events a second per background
consumer process follow.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import redis
from sqlalchemy import text

from benchmarks.loadgen import Post, Result, open_loop
from benchmarks.processes import (
    free_port,
    fresh_postgres,
    running_processes,
    service_env,
    start_redis,
    start_smtp_sink,
    wait,
    wait_http_ok,
)
from benchmarks.report import Row
from services.directory.cities_import import import_cities
from services.directory.models import Base as DirectoryBase
from services.directory.models import City
from shared.db import make_engine, make_session_factory, session_scope
from shared.events import publish_many
from shared.relay import WAKE_KEY

EVENTS = 24_629  # twin_cities.csv's partnerships created in an empty directory
SEARCH_RATE = 40
SUBSCRIBE_RATE = 10
SETTLE_TIMEOUT = 900.0
AIM_SETTLE_SECONDS = {"embedded": 60.0, "PostgreSQL": 15.0}
# Background consumers of the notifier's events: one worker process (two threads).
CONSUMERS = 1
SERVICES = ("directory", "blog", "notifier")


def measure(seconds: float = 10.0) -> list[Row]:
    rows: list[Row] = []
    for backend in ("embedded", "PostgreSQL"):
        rows += _measure_backend(backend, seconds)
    return rows


def _measure_backend(backend: str, seconds: float) -> list[Row]:
    drops = []
    with running_processes() as processes, tempfile.TemporaryDirectory() as tmp:
        try:
            urls = {}
            for service in SERVICES:
                if backend == "embedded":
                    urls[service] = f"sqlite:///{tmp}/{service}.db"
                    continue
                made = fresh_postgres()
                if made is None:
                    return [Row(f"{backend}: skipped", "no PostgreSQL server")]
                urls[service], drop = made
                drops.append(drop)
            return _run(processes, Path(tmp), backend, urls, seconds)
        finally:
            for drop in drops:
                drop()


def _run(processes, tmp: Path, backend: str, urls: dict[str, str], seconds: float) -> list[Row]:
    redis_url = start_redis(processes)
    sink_port, sink_report, sink = start_smtp_sink(processes, str(tmp), "smtp-sink")
    gateway_port = free_port()
    env = service_env(
        redis_url,
        str(tmp),
        **{f"{service.upper()}_DATABASE_URL": url for service, url in urls.items()},
        SMTP_URL=f"smtp://127.0.0.1:{sink_port}",
        CACHE_SECONDS="0",
        PORT=str(gateway_port),
        SEARCH_RATE_LIMIT="1000000/second",
        SUBSCRIBE_RATE_LIMIT="1000000/second",
    )
    me = [sys.executable, "-m", "sistercities"]
    subprocess.run([*me, "migrate"], env=env, check=True, capture_output=True)
    directory = make_engine(urls["directory"])
    sessions = make_session_factory(directory)
    with session_scope(sessions) as session:
        import_cities(session, min_population=15000)
    with sessions() as session:
        names = [name for (name,) in session.query(City.name).order_by(City.population.desc())]
        city_ids = [city_id for (city_id,) in session.query(City.id)]
    queries = names[:300] + [name[:4] for name in names[:100]]

    processes.start("gateway", [*me, "gateway"], env)
    for service in ("directory", "notifier"):
        processes.start(service, [*me, "worker", service], env)
    processes.start("relay", [*me, "relay"], env)
    base = f"http://127.0.0.1:{gateway_port}"
    for service in ("directory", "notifier"):
        wait_http_ok(f"{base}/readyz/{service}", f"the {service} worker", 120)
    search = ["/api/v1/cities?" + urlencode({"q": query}) for query in queries]
    # Warm-up: the directory's index and the gateway's connections.
    open_loop(base, SEARCH_RATE, 2.0, paths=search)

    idle = _load(base, search, seconds, "idle")
    notifier = make_engine(urls["notifier"])
    before = handled(notifier)
    outbox = sessions()
    publish_many(
        outbox, DirectoryBase.metadata, "directory.partnership_changed", import_payloads(city_ids)
    )
    started = time.perf_counter()
    outbox.commit()
    outbox.close()
    redis.Redis.from_url(redis_url).lpush(WAKE_KEY, 1)
    settled_at: list[float] = []
    watching = threading.Thread(target=_watch_settling, args=(notifier, before, settled_at))
    watching.start()
    busy = _load(base, search, seconds, "import")
    watching.join()
    settled = settled_at[0] - started
    label = "embedded (SQLite)" if backend == "embedded" else backend
    aim = AIM_SETTLE_SECONDS[backend]
    rows = [
        Row(
            f"{label}: an import's {EVENTS:,} events relayed and handled (settled)",
            f"{settled:.1f} s, {EVENTS / settled / CONSUMERS:,.0f} events/s per consumer",
            f"aim < {aim:.0f} s",
            "meets" if settled < aim else "misses",
        )
    ]
    for route in ("search", "subscribe"):
        rows.append(_latency_row(label, route, busy[route], idle[route], settled, seconds))
    # The confirmation mails wait on the notifier's background lane, behind the events.
    client = redis.Redis.from_url(redis_url)
    wait(lambda: not client.llen("notifier.background") and not client.hlen("unacked"),
         "the notifier's background lane to empty", SETTLE_TIMEOUT)  # fmt: skip
    sent = _stop_sink(sink, sink_report)
    rows.append(Row(f"{label}: confirmation mails received by the SMTP sink", f"{sent:,}"))
    return rows


def import_payloads(city_ids: list[int]) -> list[dict]:
    """What the import of twin_cities.csv announces: a partnership created a row."""
    rng = random.Random(19)
    payloads = []
    for n in range(EVENTS):
        a, b = sorted(rng.sample(city_ids, 2))
        payloads.append(
            {
                "change": "created",
                "partnership": {
                    "id": 1_000_000 + n,
                    "city_ids": [a, b],
                    "since": rng.choice([None, 1960, 1985, 2004]),
                    "status": "active",
                    "source": "twin_cities.csv",
                    "notes": None,
                },
            }
        )
    return payloads


def _watch_settling(notifier, before: int, settled_at: list[float]) -> None:
    wait(lambda: handled(notifier) - before >= EVENTS, "the events to settle", SETTLE_TIMEOUT)
    settled_at.append(time.perf_counter())


def handled(engine) -> int:
    """Partnership events in a notifier database's ledger."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM handled_events WHERE event_type = :t"),
            {"t": "directory.partnership_changed"},
        ).scalar_one()


def _load(base: str, search: list[str], seconds: float, phase: str) -> dict[str, Result]:
    """City Search and subscribe at their steady rates at once, for ``seconds``."""
    subscribe = [
        Post(
            "/api/v1/subscriptions",
            json.dumps({"email": f"bench-{phase}-{n}@example.org", "city_ids": []}).encode(),
        )
        for n in range(int(SUBSCRIBE_RATE * seconds) + 1)
    ]
    results: dict[str, Result] = {}

    def run(route: str, rate: float, paths: list) -> None:
        results[route] = open_loop(base, rate, seconds, connections=16, paths=paths)

    threads = [
        threading.Thread(target=run, args=("search", SEARCH_RATE, search)),
        threading.Thread(target=run, args=("subscribe", SUBSCRIBE_RATE, subscribe)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _latency_row(
    label: str, route: str, busy: Result, idle: Result, settled: float, seconds: float
) -> Row:
    def show(result: Result) -> str:
        errors = f", {result.errors} errors" if result.errors else ""
        return f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms{errors}"

    name = "GET /api/v1/cities?q=" if route == "search" else "POST /api/v1/subscriptions"
    rate = SEARCH_RATE if route == "search" else SUBSCRIBE_RATE
    overlap = min(seconds, settled)
    return Row(
        f"{label}: {name} at {rate}/s while the events are handled ({overlap:.0f} s of the "
        f"{seconds:.0f} s load)",
        show(busy),
        f"idle: {show(idle)}",
        f"p99 {busy.p99_ms / idle.p99_ms:.1f}x idle",
    )


def _stop_sink(pid: int, report: str) -> int:
    """Messages the sink received: it writes its report when stopped."""
    os.killpg(pid, signal.SIGTERM)
    wait(lambda: Path(report).exists(), "the sink's report")
    return json.loads(Path(report).read_text())["messages"]
