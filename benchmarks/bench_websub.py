"""WebSub: seconds from a story's publication at a feed's hub to the story on the API.

A local hub (tests/websub_hub.py, following the spec) pushes to the gateway served by gunicorn;
a real blog worker checks the signature and stores the story; the clock stops when
GET /api/v1/posts through the gateway (its cache on, as deployed) lists it. The baseline is
the polling the push replaces: a feed is polled every 15 minutes at the shortest.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time

import requests

from benchmarks.processes import free_port, running_processes, start_redis, wait
from benchmarks.report import Row
from services.blog.intervals import MIN_INTERVAL
from shared.migrations import upgrade
from tests.feed_server import FeedServer
from tests.websub_hub import Hub

STORIES = 20
ADMIN_TOKEN = secrets.token_urlsafe(24)
MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "services", "blog", "migrations")

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<title>Twinning News</title><link>https://news.example.org/</link>
<atom:link href="{hub}" rel="hub"/><atom:link href="{topic}" rel="self"/>{items}
</channel></rss>"""
ITEM = """<item><title>Story {n}</title><link>https://news.example.org/story-{n}</link>
<guid isPermaLink="false">story-{n}</guid>
<description><![CDATA[<p>Story {n}: delegates met for a week.</p>]]></description></item>"""


def feed(hub: str, topic: str, newest: int) -> bytes:
    items = "".join(ITEM.format(n=n) for n in range(newest, max(newest - 10, -1), -1))
    return FEED.format(hub=hub, topic=topic, items=items).encode()


def measure(seconds: float = 10.0) -> list[Row]:
    with (
        running_processes() as processes,
        tempfile.TemporaryDirectory() as tmp,
        FeedServer() as feeds,
        Hub() as hub,
    ):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        database = f"sqlite:///{tmp}/blog.db"
        upgrade(MIGRATIONS, database)
        env = dict(
            os.environ,
            REDIS_URL=start_redis(processes),
            DATA_DIR=tmp,
            BLOG_DATABASE_URL=database,
            BLOG_ALLOW_PRIVATE_FEEDS="1",
            WEBSUB_BASE_URL=base,
            ADMIN_TOKEN=ADMIN_TOKEN,
            PORT=str(port),
            GATEWAY_PROCESSES="1",
            LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
        )
        launcher = [sys.executable, "-m", "sistercities"]
        processes.start("blog", [*launcher, "worker", "blog"], env)
        processes.start("gateway", [*launcher, "gateway"], env)
        wait(lambda: _answers(f"{base}/readyz/blog"), "the gateway and the blog worker", 60)

        topic = feeds.url("/feed")
        feeds.serve("/feed", feed(hub.url, topic, 0))
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        response = requests.post(
            f"{base}/api/v1/admin/feeds", json={"url": topic}, headers=admin, timeout=10
        )
        response.raise_for_status()
        wait(lambda: hub.subscribers(topic), "the hub to verify the subscription", 60)

        delays = []
        for n in range(1, STORIES + 1):
            started = time.perf_counter()
            statuses = hub.publish(topic, feed(hub.url, topic, n))
            assert statuses == [202], statuses
            wait(lambda n=n: _listed(base, f"Story {n}"), f"story {n} on the API", 60)
            delays.append(time.perf_counter() - started)
    delays.sort()
    median = statistics.median(delays)
    return [
        Row(
            f"publication at the hub to the story on GET /api/v1/posts ({STORIES} stories, "
            "SQLite, 1 blog worker)",
            f"median {median:.2f} s, slowest {delays[-1]:.2f} s",
            f"polling: {MIN_INTERVAL.total_seconds() / 60:.0f} min at the shortest, "
            "on average half an interval late",
            f"{MIN_INTERVAL.total_seconds() / 2 / median:,.0f}x sooner than half of 15 min",
        )
    ]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _listed(base: str, title: str) -> bool:
    answer = requests.get(f"{base}/api/v1/posts", params={"limit": 5}, timeout=5)
    return any(post["title"] == title for post in answer.json()["results"])
