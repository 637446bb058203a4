"""The directory's places: `import-cities` (GeoNames' cities500) on SQLite and PostgreSQL, first
run and again, the partnership import on top of it, the search index load, search in the
service, and a directory worker's memory once its index holds every place.

Every place is 237,592 places, 5.5 times the 43,539 of the directory issue 14 was written
against (cities15000 and twin_cities.csv's created places): the issue's "5x the places".

Fresh SQLite file and fresh PostgreSQL database (BENCH_DATABASE_URL, default the local server;
skipped if it is not there). The worker runs as `sistercities worker directory`: a process for
each lane, each with its own index (the interactive lane's answers searches, the background
lane's links stories to places). Each lane's VmRSS is read once both have answered (an index
loads before its lane takes a message); the supervisor that starts the two holds no index.
"""

from __future__ import annotations

import sys
import tempfile
import time

import redis

from benchmarks.bench_search import (
    HOME,
    MIGRATIONS,
    TWIN_CITIES,
    make_queries,
    percentiles,
    timed_index_load,
)
from benchmarks.processes import (
    fresh_postgres,
    lane_rss_mb,
    running_processes,
    service_env,
    start_redis,
    wait,
)
from benchmarks.report import Row
from services.directory.cities_import import import_cities
from services.directory.partnerships_import import import_partnerships
from services.directory.search import SearchIndex, search
from shared.db import make_engine, make_session_factory, session_scope
from shared.errors import ServiceError
from shared.migrations import upgrade
from shared.routing import INTERACTIVE
from shared.rpc import ServiceClient

AIM_IMPORT_SECONDS = 120
AIM_LOAD_SECONDS = 10
BASELINE_RSS_MB = 380  # a directory worker with cities15000, before cities500
BASELINE_PLACES = 43_539  # cities15000 and the places twin_cities.csv created on it
AIM_P50_MS, AIM_P99_MS = 0.1, 2.0


def _imports(label: str, database_url: str) -> list[Row]:
    upgrade(MIGRATIONS, database_url)
    sessions = make_session_factory(make_engine(database_url))
    rows = []
    for run in ("first run", "again (nothing to do)"):
        started, cpu = time.perf_counter(), time.process_time()
        with session_scope(sessions) as session:
            report = import_cities(session)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows.append(
            Row(
                f"import-cities (cities500), {label}, {run}",
                f"{seconds:.1f} s ({cpu:.1f} s CPU here), {report.cities_created:,} places created",
                f"aim {AIM_IMPORT_SECONDS} s",
            )
        )
    started = time.perf_counter()
    with session_scope(sessions) as session:
        text = TWIN_CITIES.read_text(encoding="utf-8")
        report = import_partnerships(session, text, "twin_cities.csv", commit=session.commit)
    rows.append(
        Row(
            f"import twin_cities.csv on cities500, {label}",
            f"{time.perf_counter() - started:.1f} s, {report.cities_created:,} places created",
            "cities15000: 9,533 places created",
        )
    )
    return rows


def _index_load(label: str, database_url: str) -> tuple[Row, SearchIndex]:
    cpu = time.process_time()
    index, seconds, grown_mb = timed_index_load(database_url)
    cpu = time.process_time() - cpu
    row = Row(
        f"search index load, {label}",
        f"{seconds:.1f} s ({cpu:.1f} s CPU), {len(index.cities):,} places, +{grown_mb:.0f} MB peak",
        f"aim {AIM_LOAD_SECONDS} s",
    )
    return row, index


def _search(index: SearchIndex) -> Row:
    """The mixed queries of bench_search, three rounds, the middle round's figures: elapsed,
    and the thread's CPU time (on a shared machine the elapsed p99 is mostly other
    processes' turns)."""
    queries = make_queries(index)
    rounds, cpu_rounds = [], []
    for _ in range(3):
        latencies, cpu_times = [], []
        for query, _city_id in queries:
            started, cpu = time.perf_counter(), time.thread_time()
            search(index, query, home_country=HOME)
            latencies.append(time.perf_counter() - started)
            cpu_times.append(time.thread_time() - cpu)
        rounds.append(percentiles(latencies))
        cpu_rounds.append(percentiles(cpu_times))
    (p50, p99), (cpu_p50, cpu_p99) = sorted(rounds)[1], sorted(cpu_rounds)[1]
    return Row(
        f"search in the service with every place ({len(index):,}, "
        f"{len(index) / BASELINE_PLACES:.1f}x cities15000's): p50 / p99",
        f"{p50:.3f} / {p99:.3f} ms ({cpu_p50:.3f} / {cpu_p99:.3f} ms CPU)",
        f"aim {AIM_P50_MS} / {AIM_P99_MS} ms",
    )


def _worker_rss(database_url: str) -> Row:
    with running_processes() as processes, tempfile.TemporaryDirectory() as data_dir:
        redis_url = start_redis(processes)
        env = service_env(redis_url, data_dir, DIRECTORY_DATABASE_URL=database_url)
        started = time.perf_counter()
        worker = processes.start(
            "directory", [sys.executable, "-m", "sistercities", "worker", "directory"], env
        )
        client = ServiceClient(redis.Redis.from_url(redis_url, socket_timeout=30), timeout=5.0)

        def answers(task: str, **kwargs) -> bool:
            try:
                return bool(client.call(task, **kwargs))
            except ServiceError:
                return False

        wait(lambda: answers("directory.search_cities", q="Excelsior"), "searches", timeout=600)
        ready_seconds = time.perf_counter() - started
        wait(lambda: answers("directory.ping_background"), "the background lane", timeout=600)
        lanes = lane_rss_mb(worker.pid)
    interactive = lanes[INTERACTIVE]
    return Row(
        "directory worker RSS with every place loaded: the lane answering searches / both lanes",
        f"{interactive:.0f} / {sum(lanes.values()):.0f} MB "
        f"(searches answered {ready_seconds:.0f} s after start)",
        f"cities15000, one process: about {BASELINE_RSS_MB} MB",
        f"{interactive / BASELINE_RSS_MB:.1f}x",
    )


def measure(seconds: float = 10.0) -> list[Row]:
    if not TWIN_CITIES.exists():
        return [Row("skipped", f"the data set is not at {TWIN_CITIES}")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/directory.db"
        rows += _imports("SQLite", sqlite_url)
        row, index = _index_load("SQLite", sqlite_url)
        rows += [row, _search(index)]
        del index
        postgres = fresh_postgres()
        if postgres is not None:
            postgres_url, drop = postgres
            try:
                rows += _imports("PostgreSQL", postgres_url)
                rows.append(_index_load("PostgreSQL", postgres_url)[0])
            finally:
                drop()
        rows.append(_worker_rss(sqlite_url))
    return rows
