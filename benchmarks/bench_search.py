"""City Search on the whole directory (GeoNames + twin_cities.csv): in the service, through the
gateway (uncached and cached), beside a plain SQL LIKE '%q%' and the import itself.

Loads GeoNames and ../shared/data/twin_cities.csv into a fresh SQLite file and a fresh
PostgreSQL database (BENCH_DATABASE_URL, default the local server; skipped if it is not
there), then measures 1,000 mixed queries (names, prefixes, typos, accent-free spellings,
alternate names) drawn from the data with a fixed seed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from urllib.parse import urlencode

import requests
from sqlalchemy import text

from benchmarks.loadgen import closed_loop, interleaved
from benchmarks.processes import (
    free_port,
    fresh_postgres,
    lane_rss_mb,
    running_processes,
    serve,
    serve_stock_celery,
    start_redis,
    wait_http_ok,
)
from benchmarks.report import Row
from services.directory.cities_import import import_cities
from services.directory.config import DEFAULT_HOME_COUNTRY
from services.directory.names import normalize
from services.directory.partnerships_import import import_partnerships
from services.directory.search import SearchIndex, load_index, search
from shared.db import make_engine, make_session_factory, session_scope
from shared.migrations import upgrade
from shared.routing import INTERACTIVE
from tests.directory.relevance_table import RELEVANCE, comes_first, is_present

ROOT = Path(__file__).resolve().parents[1]
TWIN_CITIES = ROOT.parent / "shared" / "data" / "twin_cities.csv"
MIGRATIONS = ROOT / "services" / "directory" / "migrations"
QUERIES = 1000
CONNECTIONS = 16
# The search before issue 14 ("City, Region", typos of alternate names), scored on the same
# relevance table beside today's.
BASELINE_COMMIT = "8ee956a"
# The relevance table is written for the organisation's deployment (DIRECTORY_HOME_COUNTRY).
HOME = DEFAULT_HOME_COUNTRY


def is_latin(text: str) -> bool:
    """Written in Latin letters (up to Latin Extended-B): what the generated queries type."""
    return all(ord(ch) < 0x250 for ch in text)


def make_queries(index: SearchIndex, count: int = QUERIES, seed: int = 42) -> list[tuple[str, int]]:
    """(query, the city it means) for a mix of what people type."""
    rng = random.Random(seed)
    cities = sorted(
        (c for c in index.cities.values() if c.population >= 50_000 and is_latin(c.name)),
        key=lambda c: c.id,
    )
    alternates = sorted(
        (name, ids[0])
        for name, ids in index.ids_by_name.items()
        if len(ids) == 1
        and index.own_name[ids[0]] != name
        and index.cities[ids[0]].population >= 100_000
        and is_latin(name)
        and len(name) >= 5
    )
    queries = []
    for n in range(count):
        kind = n % 20
        if kind < 5:  # the name as written
            city = rng.choice(cities)
            queries.append((city.name, city.id))
        elif kind < 10:  # a prefix, as typed into autocomplete
            city = rng.choice(cities)
            folded = normalize(city.name)
            queries.append((folded[: rng.randint(3, max(3, min(8, len(folded))))], city.id))
        elif kind < 14:  # one slip of the finger
            city = rng.choice([c for c in cities if len(c.name) >= 6])
            folded = normalize(city.name)
            position = rng.randrange(1, len(folded) - 1)
            typo = rng.choice(("drop", "swap", "double"))
            if typo == "drop":
                folded = folded[:position] + folded[position + 1 :]
            elif typo == "swap":
                folded = (
                    folded[: position - 1]
                    + folded[position]
                    + folded[position - 1]
                    + folded[position + 1 :]
                )
            else:
                folded = folded[:position] + folded[position] + folded[position:]
            queries.append((folded, city.id))
        elif kind < 17:  # no accents, lower case
            city = rng.choice(cities)
            queries.append((normalize(city.name), city.id))
        else:  # another name of the city
            name, city_id = rng.choice(alternates)
            queries.append((name, city_id))
    return queries


def baseline_search(folder: str) -> ModuleType | None:
    """services/directory/search.py as it was at BASELINE_COMMIT, or None without git."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:services/directory/search.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(folder) / "baseline_search.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_search", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def relevance_share(index, search_function) -> tuple[float, int]:
    """Share of the relevance table's queries whose place comes first, and how many rows
    wait for places the directory lacks (cities500's small towns)."""
    rows = [row for row in RELEVANCE if is_present(index, row)]
    hits = sum(comes_first(search_function(index, row[0], row[1])["results"], row) for row in rows)
    return hits / len(rows), len(RELEVANCE) - len(rows)


def relevance_row(database_url: str, index: SearchIndex, folder: str) -> Row:
    share, waiting = relevance_share(index, functools.partial(search, home_country=HOME))
    scored = len(RELEVANCE) - waiting
    name = f"right place first, relevance table ({len(RELEVANCE) - waiting} queries"
    name += f", {waiting} wait for cities500)" if waiting else ")"
    baseline = baseline_search(folder)
    if baseline is None:
        return Row(name, f"{share:.1%}", f"before issue 14: no git to read {BASELINE_COMMIT}")
    with make_session_factory(make_engine(database_url))() as session:
        before_index = baseline.load_index(session)
    before, _ = relevance_share(before_index, baseline.search)
    return Row(
        name,
        f"{share:.1%}",
        f"before issue 14 ({BASELINE_COMMIT}): {before:.1%}",
        f"{round((1 - share) * scored)} misses, {round((1 - before) * scored)} before",
    )


def load_directory(database_url: str) -> float:
    """Migrate, load GeoNames, then time the import of twin_cities.csv alone."""
    upgrade(MIGRATIONS, database_url)
    sessions = make_session_factory(make_engine(database_url))
    with session_scope(sessions) as session:
        import_cities(session)
    started = time.perf_counter()
    with sessions() as session:
        import_partnerships(
            session,
            TWIN_CITIES.read_text(encoding="utf-8"),
            "twin_cities.csv",
            commit=session.commit,
        )
        session.commit()
    return time.perf_counter() - started


def timed_index_load(database_url: str) -> tuple[SearchIndex, float, float]:
    """The index, the seconds its load took and how much this process's peak memory grew."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with make_session_factory(make_engine(database_url))() as session:
        started = time.perf_counter()
        index = load_index(session)
        seconds = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return index, seconds, grown_mb


def timed_searches(index: SearchIndex, queries: list[tuple[str, int]]) -> tuple[list[float], float]:
    latencies, hits = [], 0
    for query, city_id in queries:
        started = time.perf_counter()
        results = search(index, query)["results"]
        latencies.append(time.perf_counter() - started)
        hits += any(result["id"] == city_id for result in results[:3])
    return latencies, hits / len(queries)


def timed_like(database_url: str, queries: list[tuple[str, int]]) -> tuple[list[float], float]:
    """The way simple directories do it: a substring match on the name, biggest first."""
    engine = make_engine(database_url)
    sql = text(
        "SELECT id FROM cities WHERE lower(name) LIKE :pattern ORDER BY population DESC LIMIT 10"
    )
    latencies, hits = [], 0
    with engine.connect() as conn:
        for query, city_id in queries:
            started = time.perf_counter()
            ids = conn.execute(sql, {"pattern": f"%{query.lower()}%"}).scalars().all()
            latencies.append(time.perf_counter() - started)
            hits += city_id in ids[:3]
    engine.dispose()
    return latencies, hits / len(queries)


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def _gateway_search(database_url: str, queries: list[tuple[str, int]], seconds: float) -> dict:
    paths = ["/api/v1/cities?" + urlencode({"q": q}) for q, _ in queries]
    hot = paths[:100]
    with running_processes() as processes, tempfile.TemporaryDirectory() as data_dir:
        redis_url = start_redis(processes)
        env = dict(
            os.environ,
            BENCH_REDIS_URL=redis_url,
            REDIS_URL=redis_url,
            DATA_DIR=data_dir,
            DIRECTORY_DATABASE_URL=database_url,
            LOG_LEVEL="warning",
            WORKER_POOL="solo",
            PYTHONUNBUFFERED="1",
            # One load generator stands for many visitors: the limiter is consulted on every
            # request (its cost is measured) but never refuses one.
            SEARCH_RATE_LIMIT="1000000/second",
        )
        me = [sys.executable, "-m", "sistercities"]
        worker = processes.start("directory", [*me, "worker", "directory"], env)
        ports = {"uncached": free_port(), "cached": free_port()}
        for label, port in ports.items():
            processes.start(
                f"gateway-{label}",
                [*me, "gateway"],
                dict(env, PORT=str(port), CACHE_SECONDS="0" if label == "uncached" else "300"),
            )
        bare = serve(processes, "bare", "benchmarks.rpc_apps:bare_app()", env)
        stock = serve_stock_celery(processes, env)
        wait_http_ok(f"{stock}/ping", "stock")
        for port in ports.values():
            wait_http_ok(f"http://127.0.0.1:{port}/readyz/directory", "gateway", timeout=120)
        wait_http_ok(f"{bare}/ping", "bare")
        session = requests.Session()
        for path in hot:  # warm the cache
            session.get(f"http://127.0.0.1:{ports['cached']}{path}", timeout=5)
        uncached_url = f"http://127.0.0.1:{ports['uncached']}/"
        cached_url = f"http://127.0.0.1:{ports['cached']}/"
        closed_loop(uncached_url, CONNECTIONS, 2.0, paths)
        results = interleaved(
            {
                "uncached": lambda s: closed_loop(uncached_url, CONNECTIONS, s, paths),
                "cached": lambda s: closed_loop(cached_url, CONNECTIONS, s, hot),
                "bare": lambda s: closed_loop(f"{bare}/ping", CONNECTIONS, s),
                "stock": lambda s: closed_loop(f"{stock}/ping", CONNECTIONS, s),
            },
            seconds,
        )
        results["worker_rss_mb"] = lane_rss_mb(worker.pid)[INTERACTIVE]
        return results


def _search_row(
    label: str, database_url: str, index: SearchIndex, queries: list[tuple[str, int]]
) -> tuple[Row, list[float], float, float]:
    latencies, hit_rate = timed_searches(index, queries)
    like_latencies, like_hits = timed_like(database_url, queries)
    (p50, p99), (like_p50, like_p99) = percentiles(latencies), percentiles(like_latencies)
    row = Row(
        f"search in the service, {label}: p50 / p99",
        f"{p50:.3f} / {p99:.3f} ms",
        f"LIKE '%q%': {like_p50:.3f} / {like_p99:.3f} ms",
        f"{like_p50 / p50:.0f}x / {like_p99 / p99:.0f}x faster",
    )
    return row, latencies, hit_rate, like_hits


def measure(seconds: float = 10.0) -> list[Row]:
    if not TWIN_CITIES.exists():
        return [Row("skipped", f"the data set is not at {TWIN_CITIES}")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/directory.db"
        import_seconds = load_directory(sqlite_url)
        rows.append(
            Row(
                "import twin_cities.csv (25,917 rows), SQLite",
                f"{import_seconds:.1f} s",
                "aim 60 s",
            )
        )
        sqlite_index, load_seconds, grown_mb = timed_index_load(sqlite_url)
        rows.append(
            Row("search index load, SQLite", f"{load_seconds:.1f} s, +{grown_mb:.0f} MB peak")
        )
        queries = make_queries(sqlite_index)
        row, latencies, hit_rate, like_hits = _search_row(
            "SQLite", sqlite_url, sqlite_index, queries
        )
        rows.append(row)
        rows.append(
            Row("right city in the top 3", f"{hit_rate:.1%}", f"LIKE '%q%': {like_hits:.1%}")
        )
        rows.append(relevance_row(sqlite_url, sqlite_index, tmp))
        sqlite_answers = [search(sqlite_index, q)["results"] for q, _ in queries[:200]]

        postgres = fresh_postgres()
        database_url = sqlite_url
        if postgres is not None:
            postgres_url, drop = postgres
            try:
                import_seconds = load_directory(postgres_url)
                rows.append(
                    Row("import twin_cities.csv, PostgreSQL", f"{import_seconds:.1f} s", "aim 60 s")
                )
                with make_session_factory(make_engine(postgres_url))() as session:
                    postgres_index = load_index(session)
                row, latencies, _, _ = _search_row(
                    "PostgreSQL", postgres_url, postgres_index, queries
                )
                rows.append(row)
                same = sqlite_answers == [
                    search(postgres_index, q)["results"] for q, _ in queries[:200]
                ]
                rows.append(
                    Row(
                        "same answers on SQLite and PostgreSQL (200 queries)",
                        "yes" if same else "NO",
                    )
                )
                gateway = _gateway_search(postgres_url, queries, seconds)
            finally:
                drop()
        else:
            gateway = _gateway_search(database_url, queries, seconds)
        in_process_rps = 1 / statistics.mean(latencies)
        stock = gateway["stock"].rps
        rows.append(
            Row(
                "GET /api/v1/cities?q= uncached vs stock Celery RPC",
                f"{gateway['uncached'].rps:,.0f} req/s",
                f"stock send_task().get() of a no-op {stock:,.0f} req/s",
                f"{gateway['uncached'].rps / stock:.2f}x",
            )
        )
        bare = gateway["bare"].rps
        for label in ("uncached", "cached"):
            result = gateway[label]
            rows.append(
                Row(
                    f"GET /api/v1/cities?q= through the gateway, {label}",
                    f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms, {result.errors} errors",
                    f"bare Flask route {bare:,.0f} req/s",
                    f"{result.rps / bare:.0%} of bare",
                )
            )
        rows.append(
            Row(
                "in-process search throughput (one core)",
                f"{in_process_rps:,.0f} searches/s",
                "",
                f"gateway uncached = {gateway['uncached'].rps / in_process_rps:.1%} of it",
            )
        )
        rows.append(
            Row(
                "directory worker RSS after warm-up (the lane answering searches)",
                f"{gateway['worker_rss_mb']:.0f} MB",
            )
        )
    return rows
