"""The site under load: home page, city pages and City Search through gunicorn, cache on and
off, beside a bare Flask route returning a constant (the ceiling), with the full directory.

Loads GeoNames and ../shared/data/twin_cities.csv into a fresh PostgreSQL database
(BENCH_DATABASE_URL's server; SQLite files when there is none), 60 stories linked to cities
into the blog's, starts the directory, blog and notifier workers (the home page's Take Action
section asks the notifier) and two gateways (CACHE_SECONDS=300 and 0, each gunicorn with two
processes), then loads each route with 16 keep-alive connections
(closed loop: throughput, p50, p99), city pages no one opened before at one client with the
cache off (aim p99 25 ms), and City Search at a fixed 200 requests/s (open loop: latency
measured from the scheduled time; aim p99 under 20 ms). With the cache on, pages come whole
from the page cache: the loads send no cookie, so each home or city page is a first visit
(which opens no session: the same bytes for everyone).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import requests

from benchmarks.bench_search import ROOT, TWIN_CITIES, load_directory, make_queries
from benchmarks.loadgen import Result, closed_loop, open_loop
from benchmarks.processes import (
    free_port,
    fresh_postgres,
    running_processes,
    serve,
    start_redis,
    wait_http_ok,
)
from benchmarks.report import Row
from services.blog.models import Post, PostCity
from services.blog.posts import PostData, store_posts
from services.directory.search import load_index
from shared.db import make_engine, make_session_factory, session_scope
from shared.events import utcnow
from shared.migrations import upgrade

CONNECTIONS = 16
OPEN_RATE = 200
STORIES = 60
CITY_PAGES = 200
SERVICES = ("directory", "blog", "notifier")
AIM_P99_MS = 20.0
AIM_COLD_CITY_P99_MS = 25.0
BLOG_MIGRATIONS = ROOT / "services" / "blog" / "migrations"
NOTIFIER_MIGRATIONS = ROOT / "services" / "notifier" / "migrations"


def _story(n: int, now) -> PostData:
    return PostData(
        key=f"bench-{n}",
        title=f"Delegation visit number {n}",
        author="Bench Writer",
        url=f"https://medium.com/sister-cities/bench-{n}",
        image=f"https://miro.medium.com/bench-{n}.png",
        excerpt="A week of exchanges " * 8,
        content_html="<p>" + "A paragraph of the story. " * 60 + "</p>",
        tags=[{"slug": "visits", "name": "Visits"}],
        reading_minutes=4,
        published_at=now - timedelta(hours=n),
        updated_at=None,
        content_hash=str(n),
    )


def load_stories(database_url: str, city_ids: list[int]) -> None:
    """Stories as the blog keeps them, each linked to two of the busiest cities."""
    upgrade(BLOG_MIGRATIONS, database_url)
    sessions = make_session_factory(make_engine(database_url))
    now = utcnow()
    rng = random.Random(7)
    stories = [_story(n, now) for n in range(STORIES)]
    with session_scope(sessions) as session:
        store_posts(session, None, stories, now)
        for post in session.query(Post).all():
            linked = rng.sample(city_ids, 2)
            post.city_ids = linked
            session.add_all(PostCity(post_id=post.id, city_id=city) for city in linked)


def _row(label: str, result: Result, bare: Result) -> Row:
    errors = f", {result.errors} errors" if result.errors else ""
    return Row(
        label,
        f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms{errors}",
        f"bare Flask route {bare.rps:,.0f} req/s",
        f"{result.rps / bare.rps:.0%} of bare",
    )


@contextlib.contextmanager
def databases(tmp: str) -> Iterator[tuple[dict[str, str], str]]:
    """The database URL of each service a public page asks (the home page's Take Action
    section asks the notifier), and which kind they are."""
    made = {service: fresh_postgres() for service in SERVICES}
    if None in made.values():
        for found in made.values():
            if found is not None:
                found[1]()
        yield {service: f"sqlite:///{tmp}/{service}.db" for service in SERVICES}, "SQLite"
        return
    try:
        yield {service: url for service, (url, _drop) in made.items()}, "PostgreSQL"
    finally:
        for _url, drop in made.values():
            drop()


def measure(seconds: float = 10.0) -> list[Row]:
    if not TWIN_CITIES.exists():
        return [Row("skipped", f"the data set is not at {TWIN_CITIES}")]
    with (
        tempfile.TemporaryDirectory() as tmp,
        databases(tmp) as (urls, kind),
        running_processes() as processes,
    ):
        directory_url, blog_url = urls["directory"], urls["blog"]
        load_directory(directory_url)
        upgrade(NOTIFIER_MIGRATIONS, urls["notifier"])
        with make_session_factory(make_engine(directory_url))() as session:
            index = load_index(session)
        twinned = sorted(index.sisters, key=lambda c: -len(index.sisters[c]))
        busiest = twinned[:CITY_PAGES]
        # Pages no load below opens: each is a first visit to its city.
        never_opened = random.Random(11).sample(twinned[CITY_PAGES:], 1000)
        load_stories(blog_url, busiest[:50])
        queries = make_queries(index)

        redis_url = start_redis(processes)
        env = dict(
            os.environ,
            BENCH_REDIS_URL=redis_url,
            REDIS_URL=redis_url,
            DATA_DIR=tmp,
            DIRECTORY_DATABASE_URL=directory_url,
            BLOG_DATABASE_URL=blog_url,
            NOTIFIER_DATABASE_URL=urls["notifier"],
            LOG_LEVEL="warning",
            WORKER_POOL="solo",
            PYTHONUNBUFFERED="1",
            # One client sends all the load here: no limit may get in the way.
            SEARCH_RATE_LIMIT="1000000/second",
        )
        me = [sys.executable, "-m", "sistercities"]
        for service in SERVICES:
            processes.start(service, [*me, "worker", service], env)
        ports = {"cache on": free_port(), "cache off": free_port()}
        for label, port in ports.items():
            cache = "300" if label == "cache on" else "0"
            processes.start(
                f"gateway-{label}", [*me, "gateway"], dict(env, PORT=str(port), CACHE_SECONDS=cache)
            )
        bare = serve(processes, "bare", "benchmarks.rpc_apps:bare_app()", env)
        wait_http_ok(f"{bare}/ping", "bare")
        for port in ports.values():
            for service in SERVICES:
                wait_http_ok(f"http://127.0.0.1:{port}/readyz/{service}", "gateway", 120)

        routes = {
            "home page /": ["/"],
            "city page /cities/{id}": [f"/cities/{city}" for city in busiest],
            "GET /api/v1/cities?q=": ["/api/v1/cities?" + urlencode({"q": q}) for q, _ in queries],
        }
        warm = requests.Session()
        for port in ports.values():
            for paths in routes.values():
                for path in paths[:CITY_PAGES]:
                    warm.get(f"http://127.0.0.1:{port}{path}", timeout=10)

        ceiling = closed_loop(f"{bare}/ping", CONNECTIONS, seconds)
        rows = [
            Row(
                f"bare Flask route returning a constant (gunicorn, 2 processes), {kind}",
                f"{ceiling.rps:,.0f} req/s, p50 {ceiling.p50_ms:.1f} ms, "
                f"p99 {ceiling.p99_ms:.1f} ms",
                "the ceiling",
            )
        ]
        for route, paths in routes.items():
            for label, port in ports.items():
                result = closed_loop(f"http://127.0.0.1:{port}/", CONNECTIONS, seconds, paths)
                rows.append(_row(f"{route}, {label}, {CONNECTIONS} connections", result, ceiling))
        cold = closed_loop(
            f"http://127.0.0.1:{ports['cache off']}/",
            1,
            seconds,
            [f"/cities/{city}" for city in never_opened],
        )
        rows.append(
            Row(
                "city page never opened before, cache off, 1 client",
                f"p50 {cold.p50_ms:.1f} ms, p99 {cold.p99_ms:.1f} ms, {cold.requests} pages"
                + (f", {cold.errors} errors" if cold.errors else ""),
                f"aim p99 <= {AIM_COLD_CITY_P99_MS:.0f} ms",
                "meets" if cold.p99_ms <= AIM_COLD_CITY_P99_MS else "misses",
            )
        )
        search = routes["GET /api/v1/cities?q="]
        for label, port in ports.items():
            steady = open_loop(
                f"http://127.0.0.1:{port}/", OPEN_RATE, seconds, connections=32, paths=search
            )
            verdict = "meets" if steady.p99_ms < AIM_P99_MS else "misses"
            rows.append(
                Row(
                    f"GET /api/v1/cities?q= at a steady {OPEN_RATE} req/s, {label}",
                    f"p50 {steady.p50_ms:.1f} ms, p99 {steady.p99_ms:.1f} ms"
                    + (f", {steady.errors} errors" if steady.errors else ""),
                    f"aim p99 < {AIM_P99_MS:.0f} ms",
                    verdict,
                )
            )
    return rows
