"""A feed server that accepts connections and never answers, and a directory worker stopped
while posts arrive: the hanging feed holds one fetch until its timeout and nothing else; the
other feeds' posts are stored at once, wait for their city links while the directory is away,
and are linked to the right cities and announced once each when it is back."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import text

from tests.faults.workloads import (
    ANNOUNCED,
    POSTS,
    add_known_cities,
    assert_each_post_announced_once,
    register_feeds,
    start_polling_cycle,
)
from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.faults

FEEDS = 20


class SilentServer:
    """Accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        self.accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)
            self.accepted.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed"

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


def feed_state(faults, url: str) -> tuple[str, str | None]:
    with faults.engines["blog"].connect() as conn:
        return conn.execute(
            text("SELECT status, last_error FROM feeds WHERE url = :url"), {"url": url}
        ).one()


def test_stories_wait_out_a_hanging_feed_and_a_stopped_directory(faults):
    city_ids = add_known_cities(faults)
    faults.processes.stop("directory")
    blog = faults.engines["blog"]
    silent = SilentServer()
    try:
        with FeedServer() as server:
            register_feeds(blog, [silent.url])
            posts = start_polling_cycle(faults, server, FEEDS)
            wait_for(lambda: faults.count("blog", POSTS) == posts, timeout=60,
                     what="the good feeds' posts")  # fmt: skip
        # Stored while the hanging fetch still waits: it held one thread, not the worker.
        assert silent.accepted.is_set()
        assert feed_state(faults, silent.url)[0] == "pending"
        assert faults.count("blog", ANNOUNCED) == 0  # links unknown: nothing announced yet
        # The fetch gives up after the read timeout (20 s without a byte) and says why.
        _, error = wait_for(
            lambda: (state := feed_state(faults, silent.url))[0] == "error" and state,
            timeout=60, what="the hanging feed to time out",
        )  # fmt: skip
        assert "did not answer in time" in error
    finally:
        silent.close()

    faults.start("directory")
    faults.wait_until_answers("directory")
    # The link requests waited in the directory's queue: answered now, nothing re-sent.
    assert_each_post_announced_once(faults, posts, redrive=False)
    with blog.connect() as conn:
        stored = conn.execute(text("SELECT title, city_ids FROM posts")).all()
    for title, linked in stored:
        named = next(name for name in city_ids if title.startswith(name))
        assert linked == [city_ids[named]], (title, linked)
    faults.say(
        f"hanging feed + directory stopped: {posts} posts stored while both were out, each "
        "linked to its city and announced once after the directory came back"
    )
