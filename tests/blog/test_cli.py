"""Staff's command line for the blog, run as staff run it: `blog poll FEED_ID` fetches that feed
now, as `POST /api/v1/admin/feeds/{id}/poll` does; with no id, every feed."""

import re
import subprocess
import sys

import pytest

from services.blog import feeds
from shared.db import session_scope
from shared.events import utcnow

pytestmark = pytest.mark.integration

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Twinning News</title><link>https://medium.com/twinning</link>
<item><title>A charter signed</title><link>https://medium.com/twinning/charter-0123456789ab</link>
<guid isPermaLink="false">https://medium.com/p/0123456789ab</guid>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate><description>Signed.</description></item>
</channel></rss>"""


def sistercities(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sistercities", "blog", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_poll_fetches_the_feeds_named_or_every_feed(stack, stack_env, blog_sessions, feed_server):
    urls = [feed_server.serve(path, FEED) for path in ("/feed/one", "/feed/two")]
    with session_scope(blog_sessions) as session:
        one, two = (feeds.add_feed(session, url, utcnow(), allow_private=True).id for url in urls)

    named = sistercities(stack_env, "poll", str(two))
    assert named.returncode == 0, named.stderr
    assert re.search(rf"^feed {two}: stored: 1 new or changed$", named.stdout, re.M)
    assert "polled 1 feeds: 1 posts new or changed, 0 failed" in named.stdout
    assert feed_server.hits == {"/feed/two": 1}

    every = sistercities(stack_env, "poll")
    assert every.returncode == 0, every.stderr
    assert re.search(rf"^feed {one}: stored: ", every.stdout, re.M)  # the same story: stored once
    assert "polled 2 feeds" in every.stdout
    assert feed_server.hits == {"/feed/one": 1, "/feed/two": 2}
