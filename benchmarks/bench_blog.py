"""Syndication: 1,000 Medium-like feeds of 10 items (about 5 KB of HTML each) served locally,
polled by the real blog workers; the pipeline's cost by stage, against bare feedparser.

The baseline is `feedparser.parse` with its defaults (its own sanitizer and relative-URI
resolution on) on the same bytes, measured in the same run. The pipeline is what one poll of
one feed costs here: fetch over HTTP, parse, sanitize, store (SQLite, then PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time

import feedparser
import redis
from sqlalchemy import func, select, update

from benchmarks.feed_farm import ITEMS, feed_body
from benchmarks.processes import (
    free_port,
    fresh_postgres,
    running_processes,
    start_redis,
    wait,
)
from benchmarks.report import Row
from services.blog import feeds, polling
from services.blog.models import Base, Feed, Post
from shared.celery_app import make_celery
from shared.db import make_engine, make_session_factory, session_scope
from shared.errors import ServiceError
from shared.events import utcnow
from shared.migrations import upgrade
from shared.rpc import ServiceClient
from shared.settings import CommonSettings, EnvReader

FEEDS = 1000
STAGE_SAMPLE = 200
MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "services", "blog", "migrations")
# Each stage of a poll and the part of services/blog/polling.py that does it.
STAGE_PARTS = {
    "fetch": "fetch",
    "parse": "parse_feed",
    "sanitize": "post_from_entry",
    "store": "_store",
}
STAGES = tuple(STAGE_PARTS)


class StageClock:
    """Seconds each stage of a poll took: the parts ``polling.poll_feed`` calls are wrapped
    in this process while it is installed, so the product itself keeps no timings."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def installed(self):
        originals = {name: getattr(polling, name) for name in STAGE_PARTS.values()}
        try:
            for stage, name in STAGE_PARTS.items():
                setattr(polling, name, self._timed(stage, originals[name]))
            yield self
        finally:
            for name, part in originals.items():
                setattr(polling, name, part)

    def _timed(self, stage: str, part):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return part(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed

        return timed


def measure(seconds: float = 10.0) -> list[Row]:
    rows: list[Row] = []
    with running_processes() as processes, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        processes.start(
            "feed-farm",
            [sys.executable, "-m", "benchmarks.feed_farm", "--port", str(port),
             "--feeds", str(FEEDS)],
            dict(os.environ),
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait(lambda: _answers(base), "the feed farm")
        redis_url = start_redis(processes)
        databases = [("SQLite", f"sqlite:///{tmp}/blog.db", None)]
        postgres = fresh_postgres()
        if postgres is not None:
            databases.append(("PostgreSQL", *postgres))
        try:
            for label, url, _drop in databases:
                upgrade(_migrations(), url)
                rows += _stage_rows(label, url, base)
                rows += _worker_rows(label, url, base, redis_url, processes, tmp)
        finally:
            for _label, _url, drop in databases:
                if drop is not None:
                    drop()
    return rows


def _migrations():
    from pathlib import Path

    return Path(MIGRATIONS).resolve()


def _answers(base: str) -> bool:
    import requests

    return requests.get(f"{base}/feed/0", timeout=2).status_code == 200


def _add_feeds(url: str, base: str, count: int) -> list[int]:
    sessions = make_session_factory(make_engine(url))
    with session_scope(sessions) as session:
        session.execute(update(Feed).values(next_check_at=utcnow()))
        added = [
            feeds.add_feed(session, f"{base}/feed/{n}", utcnow(), allow_private=True)
            for n in range(count)
        ]
        session.flush()
        return [feed.id for feed in added]


def _reset(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def _stage_rows(label: str, url: str, base: str) -> list[Row]:
    """One poll of each of 200 feeds in this process: the cost of each stage, per feed. Each
    poll follows a bare parse of the same feed's bytes, so both see the same machine."""
    _reset(url)
    ids = _add_feeds(url, base, STAGE_SAMPLE)
    sessions = make_session_factory(make_engine(url))
    timings = {stage: [] for stage in STAGES}
    totals, cpu, bare = [], [], []
    clock = StageClock()
    for n, feed_id in enumerate(ids):
        body = feed_body(n)
        started = time.perf_counter()
        feedparser.parse(body)
        bare.append((time.perf_counter() - started) * 1000)
        clock.seconds.clear()
        started = time.process_time()
        with clock.installed():
            result = polling.poll_feed(
                sessions, feed_id, allow_private=True, medium_domains=frozenset({"127.0.0.1"})
            )
        cpu.append((time.process_time() - started) * 1000)
        assert result.outcome == "stored" and len(result.changed_post_ids) == ITEMS, result
        for stage in STAGES:
            timings[stage].append(clock.seconds[stage] * 1000)
        totals.append(sum(clock.seconds.values()) * 1000)
    rows = []
    for stage in STAGES:
        median = statistics.median(timings[stage])
        rows.append(
            Row(
                f"{label}: {stage}, per feed (per item)",
                f"{median:.2f} ms ({median / ITEMS:.3f} ms)",
            )
        )
    whole, whole_cpu = statistics.median(totals), statistics.median(cpu)
    bare_ms = statistics.median(bare)
    rows.append(Row(f"{label}: bare feedparser.parse, defaults, per feed", f"{bare_ms:.1f} ms"))
    rows.append(
        Row(
            f"{label}: whole pipeline, fetch to stored posts, per feed (elapsed)",
            f"{whole:.1f} ms",
            f"bare parse {bare_ms:.1f} ms",
            f"{whole / bare_ms:.2f} x (aim < 1)",
        )
    )
    rows.append(
        Row(
            f"{label}: the same, CPU time of the polling process",
            f"{whole_cpu:.1f} ms",
            f"bare parse {bare_ms:.1f} ms",
            f"{whole_cpu / bare_ms:.2f} x",
        )
    )
    return rows


def _worker_rows(label: str, url: str, base: str, redis_url: str, processes, tmp: str) -> list[Row]:
    """All 1,000 feeds polled by two blog worker processes, as beat would hand them out."""
    _reset(url)
    _add_feeds(url, base, FEEDS)
    env = dict(
        os.environ,
        REDIS_URL=redis_url,
        DATA_DIR=tmp,
        BLOG_DATABASE_URL=url,
        BLOG_ALLOW_PRIVATE_FEEDS="1",
        MEDIUM_CUSTOM_DOMAINS="127.0.0.1",  # the feed farm plays Medium
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    command = [sys.executable, "-m", "sistercities", "worker", "blog"]
    workers = [processes.start(f"blog-{label}-{n}", command, env) for n in range(2)]
    celery = make_celery("bench", CommonSettings(**CommonSettings.read(EnvReader(env))))
    engine = make_engine(url)
    sessions = make_session_factory(engine)

    def polled_since(moment, status=None) -> int:
        with sessions() as session:
            query = select(func.count()).select_from(Feed).where(Feed.last_fetched_at >= moment)
            if status:
                query = query.where(Feed.status == status)
            return session.scalar(query)

    try:
        wait(lambda: _pings(redis_url), "the blog workers", timeout=60)
        started_at = utcnow()
        started = time.perf_counter()
        celery.send_task("blog.schedule_fetches")
        wait(lambda: polled_since(started_at) >= FEEDS, "the first poll", timeout=600)
        first = time.perf_counter() - started
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Post))
            failed = session.scalar(
                select(func.count()).select_from(Feed).where(Feed.status == "error")
            )
        with session_scope(sessions) as session:
            session.execute(update(Feed).values(next_check_at=utcnow(), claimed_until=None))
        started_at = utcnow()
        started = time.perf_counter()
        celery.send_task("blog.schedule_fetches")
        wait(lambda: polled_since(started_at, "not_modified") >= FEEDS, "the 304 poll", timeout=600)
        second = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        engine.dispose()
    return [
        Row(
            f"{label}: first poll of {FEEDS:,} feeds by 2 blog workers",
            f"{first:.1f} s ({stored:,} posts, {failed} failed)",
            "aim 30 s",
            f"{FEEDS / first:.0f} feeds/s",
        ),
        Row(
            f"{label}: second poll, all 304",
            f"{second:.1f} s",
            "aim 5 s",
            f"{FEEDS / second:.0f} feeds/s",
        ),
    ]


def _pings(redis_url: str) -> bool:
    try:
        ServiceClient(redis.Redis.from_url(redis_url), 1.0).call("blog.ping_service")
        return True
    except ServiceError:
        return False
