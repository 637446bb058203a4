"""The three feed attacks of the security review, tried end to end: staff register the feeds
through the admin API, the real blog worker fetches them from a local server, and what the
public API shows is checked. Each of these got through before the fix."""

import pytest

from tests.conftest import count_rows
from tests.feed_server import FeedServer
from tests.integration.test_blog_end_to_end import FEED, posts
from tests.stack import wait_for

pytestmark = pytest.mark.integration

LOCAL_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>This machine</title>
<item><title>Read off the worker's disk</title><link>https://example.org/disk</link>
<guid>disk-1</guid><description>A local file.</description></item></channel></rss>"""


def item(title: str, html: str, guid: str) -> str:
    return (
        f"<item><title>{title}</title><link>https://example.org/{guid}</link><guid>{guid}</guid>"
        f"<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description><![CDATA[{html}]]></description></item>"
    )


def rss(*items: str) -> str:
    channel = f"<channel><title>T</title>{''.join(items)}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


@pytest.fixture
def feed_server():
    with FeedServer() as server:
        yield server


def register(client, admin_headers, url: str) -> dict:
    response = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers)
    assert response.status_code == 201, response.json
    return response.json


def feed_health(client, admin_headers, feed_id: int) -> dict:
    feeds = client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"]
    return next(feed for feed in feeds if feed["id"] == feed_id)


def test_a_feed_body_naming_a_local_file_is_not_read_from_disk(
    client, stack, admin_headers, clean_databases, feed_server, tmp_path
):
    local = tmp_path / "local-feed.xml"
    local.write_text(LOCAL_FEED)
    feed = register(client, admin_headers, feed_server.serve("/feed/path", str(local)))
    wait_for(lambda: feed_health(client, admin_headers, feed["id"])["status"] == "error",
             what="the fetch to be refused")  # fmt: skip
    health = feed_health(client, admin_headers, feed["id"])
    assert "not an RSS or Atom feed" in health["last_error"]
    assert posts(client) == []


def test_an_item_of_thirty_thousand_iframes_does_not_stall_the_worker(
    client, stack, admin_headers, clean_databases, feed_server
):
    # 480 KB: the quadratic pattern took a minute over it, and longer on a busy machine.
    flood = rss(item("Flood", "<iframe src='x'>" * 30_000, "flood-1"))
    register(client, admin_headers, feed_server.serve("/feed/flood", flood))
    register(client, admin_headers, feed_server.serve("/feed/after", FEED))
    wait_for(lambda: len(posts(client)) == 2, timeout=30, what="both feeds' stories")
    assert {post["title"] for post in posts(client)} == {
        "Flood", "Ruritania Falls and Zenda Springs renew their ties"
    }  # fmt: skip


def test_a_feed_on_another_host_cannot_take_over_a_medium_story(
    client, stack, admin_headers, clean_databases, feed_server
):
    # The stack's local server plays Medium on 127.0.0.1 (MEDIUM_CUSTOM_DOMAINS).
    register(client, admin_headers, feed_server.serve("/feed/sister-cities", FEED))
    wait_for(lambda: len(posts(client)) == 1, what="the Medium story")
    (original,) = posts(client)
    wait_for(lambda: count_rows(clean_databases["blog"],
             "SELECT count(*) FROM outbox_events WHERE event_type = 'blog.post_published'") == 1,
             what="its announcement")  # fmt: skip

    forged = FEED.replace("Delegates from Ruritania Falls", "Taken over: Ruritania Falls")
    url = feed_server.serve("/feed/forged", forged).replace("127.0.0.1", "localhost")
    hostile = register(client, admin_headers, url)
    wait_for(lambda: feed_health(client, admin_headers, hostile["id"])["status"] == "ok",
             what="the other host's feed to be fetched")  # fmt: skip

    story = client.get(f"/api/v1/posts/{original['id']}").json
    assert "Delegates from Ruritania Falls" in story["content_html"]
    assert "Taken over" not in story["content_html"]
    updated = count_rows(
        clean_databases["blog"],
        "SELECT count(*) FROM outbox_events WHERE event_type = 'blog.post_updated'",
    )
    assert updated == 0
