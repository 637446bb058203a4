"""The directory's places: `import-cities` (GeoNames' cities500) on SQLite and PostgreSQL, first
run and again, the partnership import on top of it, the search index load, and a directory
worker's memory once its index holds every place.

Fresh SQLite file and fresh PostgreSQL database (BENCH_DATABASE_URL, default the local server;
skipped if it is not there); the worker runs as `sistercities worker directory` and its VmRSS
is read after it has answered a search (its index is loaded before it takes a message).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks.processes import fresh_postgres, running_processes, start_redis, wait
from benchmarks.report import Row
from services.directory.cities_import import import_cities
from services.directory.partnerships_import import import_partnerships
from services.directory.search import load_index
from shared.db import make_engine, make_session_factory, session_scope
from shared.errors import ServiceError
from shared.migrations import upgrade
from shared.rpc import ServiceClient

ROOT = Path(__file__).resolve().parents[1]
TWIN_CITIES = ROOT.parent / "shared" / "data" / "twin_cities.csv"
MIGRATIONS = ROOT / "services" / "directory" / "migrations"
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
    with sessions() as session:
        report = import_partnerships(
            session,
            TWIN_CITIES.read_text(encoding="utf-8"),
            "twin_cities.csv",
            commit=session.commit,
        )
        session.commit()
    rows.append(
        Row(
            f"import twin_cities.csv on cities500, {label}",
            f"{time.perf_counter() - started:.1f} s, {report.cities_created:,} places created",
            "cities15000: 9,533 places created",
        )
    )
    return rows


def _index_load(label: str, database_url: str) -> Row:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with make_session_factory(make_engine(database_url))() as session:
        started = time.perf_counter()
        index = load_index(session)
        seconds = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return Row(
        f"search index load, {label}",
        f"{seconds:.1f} s, {len(index.cities):,} places, +{grown_mb:.0f} MB peak",
        f"aim {AIM_LOAD_SECONDS} s",
    )


def _worker_rss(database_url: str) -> Row:
    with running_processes() as processes, tempfile.TemporaryDirectory() as data_dir:
        redis_url = start_redis(processes)
        env = dict(
            os.environ,
            REDIS_URL=redis_url,
            DATA_DIR=data_dir,
            DIRECTORY_DATABASE_URL=database_url,
            LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
        )
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
        status = Path(f"/proc/{worker.pid}/status").read_text()
        rss_mb = int(status.split("VmRSS:")[1].split()[0]) / 1024
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
