"""The directory's places: `import-cities` (GeoNames' cities500) on SQLite and PostgreSQL, first
run and again, the partnership import on top of it, the search index load, and a directory
worker's memory once its index holds every place.

Fresh SQLite file and fresh PostgreSQL database (BENCH_DATABASE_URL, default the local server;
skipped if it is not there); the worker runs as `sistercities worker directory` and its VmRSS
is read after it has answered a search (its index is loaded before it takes a message).
"""

from __future__ import annotations

import sys
import tempfile
import time

import redis

from benchmarks.bench_search import MIGRATIONS, TWIN_CITIES, timed_index_load
from benchmarks.processes import (
    fresh_postgres,
    running_processes,
    service_env,
    start_redis,
    vm_rss_mb,
    wait,
)
from benchmarks.report import Row
from services.directory.cities_import import import_cities
from services.directory.partnerships_import import import_partnerships
from shared.db import make_engine, make_session_factory, session_scope
from shared.errors import ServiceError
from shared.migrations import upgrade
from shared.rpc import ServiceClient

AIM_IMPORT_SECONDS = 120
AIM_LOAD_SECONDS = 10
BASELINE_RSS_MB = 380  # a directory worker with cities15000, before cities500


def _imports(label: str, database_url: str) -> list[Row]:
    upgrade(MIGRATIONS, database_url)
    sessions = make_session_factory(make_engine(database_url))
    rows = []
    for run in ("first run", "again (nothing to do)"):
        started = time.perf_counter()
        with session_scope(sessions) as session:
            report = import_cities(session)
        seconds = time.perf_counter() - started
        rows.append(
            Row(
                f"import-cities (cities500), {label}, {run}",
                f"{seconds:.1f} s, {report.cities_created:,} places created",
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


def _index_load(label: str, database_url: str) -> Row:
    index, seconds, grown_mb = timed_index_load(database_url)
    return Row(
        f"search index load, {label}",
        f"{seconds:.1f} s, {len(index.cities):,} places, +{grown_mb:.0f} MB peak",
        f"aim {AIM_LOAD_SECONDS} s",
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

        def answers() -> bool:
            try:
                return bool(client.call("directory.search_cities", q="Excelsior")["results"])
            except ServiceError:
                return False

        wait(answers, "the directory worker", timeout=600)
        ready_seconds = time.perf_counter() - started
        rss_mb = vm_rss_mb(worker.pid)
    return Row(
        "directory worker RSS with every place loaded",
        f"{rss_mb:.0f} MB (answering {ready_seconds:.0f} s after start)",
        f"cities15000: about {BASELINE_RSS_MB} MB",
        f"{rss_mb / BASELINE_RSS_MB:.1f}x",
    )


def measure(seconds: float = 10.0) -> list[Row]:
    if not TWIN_CITIES.exists():
        return [Row("skipped", f"the data set is not at {TWIN_CITIES}")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/directory.db"
        rows += _imports("SQLite", sqlite_url)
        rows.append(_index_load("SQLite", sqlite_url))
        postgres = fresh_postgres()
        if postgres is not None:
            postgres_url, drop = postgres
            try:
                rows += _imports("PostgreSQL", postgres_url)
                rows.append(_index_load("PostgreSQL", postgres_url))
            finally:
                drop()
        rows.append(_worker_rss(sqlite_url))
    return rows
