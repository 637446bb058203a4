"""The blog end to end with real workers: staff register a feed through the admin API, the blog
worker fetches it from a local server, the directory links the story to its cities, the story is
announced once and read through the public API. A directory that is down only delays links."""

import pytest

from services.gateway.cache import POLL_SECONDS
from tests.conftest import add_test_cities, count_rows, wait_until_answers
from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.integration

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Sister Cities News</title><link>https://medium.com/sister-cities</link>
<item>
  <title><![CDATA[Ruritania Falls and Zenda Springs renew their ties]]></title>
  <link>https://medium.com/sister-cities/renewed-ties-0123456789ab?source=rss----2</link>
  <guid isPermaLink="false">https://medium.com/p/0123456789ab</guid>
  <category><![CDATA[twinning]]></category>
  <dc:creator><![CDATA[Ada Writer]]></dc:creator>
  <pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>
  <content:encoded><![CDATA[<p>Delegates from Ruritania Falls visited Zenda Springs.</p>
  <script>alert('x')</script><img src="https://medium.com/_/stat?event=x" width="1" height="1">
  ]]></content:encoded>
</item>
</channel></rss>"""


@pytest.fixture
def feed_server():
    with FeedServer() as server:
        yield server


@pytest.fixture
def two_cities(clean_databases, services):
    ids = add_test_cities(
        clean_databases["directory"],
        [("Ruritania Falls", "US", 40.0, -100.0, 50_000),
         ("Zenda Springs", "CZ", 50.0, 15.0, 20_000)],
    )  # fmt: skip
    # The story's cities are matched from the directory as it is (the background lane's
    # worker catches up first: tests/directory/test_index_holder.py); a visitor's search may be
    # a second behind, so wait for it.
    wait_for(
        lambda: services.call("directory.search_cities", "Zenda Springs")["results"],
        what="the directory's interactive lane to know the test cities",
    )
    return sorted(ids)


def linked_cities(client) -> list[list[int]]:
    return [post["city_ids"] for post in posts(client)]


def posts(client, **query) -> list[dict]:
    response = client.get("/api/v1/posts", query_string=query)
    assert response.status_code == 200, response.json
    return response.json["results"]


def outbox_count(engines, event_type: str) -> int:
    return count_rows(
        engines["blog"], "SELECT count(*) FROM outbox_events WHERE event_type = :t", t=event_type
    )


def test_a_registered_feed_becomes_linked_announced_stories(
    client, stack, admin_headers, clean_databases, feed_server, two_cities
):
    url = feed_server.serve("/feed/sister-cities", FEED, etag='"1"')
    response = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers)
    assert response.status_code == 201, response.json
    feed = response.json
    assert (feed["url"], feed["status"]) == (url, "pending")
    assert (
        client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers).status_code
        == 409
    )

    wait_for(lambda: linked_cities(client) == [two_cities],
             what="the story to be stored and linked to both cities")  # fmt: skip
    (story,) = posts(client)
    assert story["url"] == "https://medium.com/sister-cities/renewed-ties-0123456789ab"
    assert story["tags"] == [{"slug": "twinning", "name": "Twinning"}]
    assert story["author"] == "Ada Writer" and story["published_at"].startswith("2026-11-24T10:00")

    detail = client.get(f"/api/v1/posts/{story['id']}").json
    assert "Delegates from Ruritania Falls" in detail["content_html"]
    assert "<script" not in detail["content_html"] and "_/stat" not in detail["content_html"]
    assert client.get("/api/v1/posts/999999").status_code == 404

    assert [p["id"] for p in posts(client, city_id=two_cities[1])] == [story["id"]]
    assert posts(client, city_id=two_cities[1] + 1000) == []
    assert [p["id"] for p in posts(client, tag="Twinning")] == [story["id"]]

    wait_for(lambda: count_rows(clean_databases["notifier"],
             "SELECT count(*) FROM handled_events WHERE event_type = 'blog.post_published'") == 1,
             what="the announcement to reach the notifier")  # fmt: skip
    feeds = client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"]
    assert [(f["status"], f["post_count"], f["title"]) for f in feeds] == [
        ("ok", 1, "Sister Cities News")
    ]

    # A poll on demand: answered at once, fetched in the background, answered 304, no news.
    hits = feed_server.hits["/feed/sister-cities"]
    response = client.post(f"/api/v1/admin/feeds/{feed['id']}/poll", headers=admin_headers)
    assert response.status_code == 202
    wait_for(lambda: feed_server.not_modified["/feed/sister-cities"] == 1, what="a second fetch")
    assert feed_server.hits["/feed/sister-cities"] == hits + 1
    assert outbox_count(clean_databases, "blog.post_published") == 1
    assert outbox_count(clean_databases, "blog.post_updated") == 0

    removed = f"/api/v1/admin/feeds/{feed['id']}?stories=keep"
    assert client.delete(removed, headers=admin_headers).json == {
        "deleted": feed["id"],
        "stories_hidden": 0,
    }
    assert client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"] == []
    assert len(posts(client)) == 1  # its stories stay
    assert client.post("/api/v1/admin/feeds/999/poll", headers=admin_headers).status_code == 404


def test_a_city_added_after_its_story_gets_the_story(
    client, stack, admin_headers, clean_databases, feed_server, two_cities
):
    """A town the directory did not know when its story was linked: once it is added (and
    ``directory.cities_changed`` says so), the blog asks again and the story joins its page;
    the story is announced again once, and not for a change that leaves its cities alone."""
    feed = FEED.replace("visited Zenda Springs.", "visited Zenda Springs and Strelsau Harbour.")
    url = feed_server.serve("/feed/late-town", feed)
    response = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers)
    assert response.status_code == 201, response.json
    wait_for(lambda: linked_cities(client) == [two_cities],
             what="the story to be linked to the two cities the directory knows")  # fmt: skip

    late_town = ("Strelsau Harbour", "DE", 52.0, 11.0, 30_000)
    (strelsau,) = add_test_cities(clean_databases["directory"], [late_town], announce=True)
    wait_for(lambda: linked_cities(client) == [sorted([*two_cities, strelsau])],
             what="the story to be linked to the town added after it")  # fmt: skip
    assert [p["title"] for p in posts(client, city_id=strelsau)] == [
        "Ruritania Falls and Zenda Springs renew their ties"
    ]
    assert outbox_count(clean_databases, "blog.post_updated") == 1

    add_test_cities(clean_databases["directory"], [("Elsewhere Town", "FR", 45.0, 2.0, 9_000)],
                    announce=True)  # fmt: skip
    seen = "SELECT max(version) FROM directory_seen"
    linked_at_latest = (
        "SELECT count(*) FROM posts"
        " WHERE linked_version >= (SELECT max(version) FROM directory_seen)"
    )
    wait_for(lambda: count_rows(clean_databases["blog"], linked_at_latest) == 1,
             what="the story to be linked again from the newest directory")  # fmt: skip
    assert count_rows(clean_databases["blog"], seen) > 0
    assert outbox_count(clean_databases, "blog.post_updated") == 1  # same cities: no news


def test_hiding_a_removed_feeds_stories_withdraws_them_from_the_notifier(
    client, stack, admin_headers, clean_databases, feed_server
):
    url = feed_server.serve("/feed/sister-cities", FEED)
    feed = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers).json
    notifier = clean_databases["notifier"]
    wait_for(lambda: count_rows(notifier, "SELECT count(*) FROM stories") == 1,
             what="the notifier to hold the announced story")  # fmt: skip
    removed = client.delete(f"/api/v1/admin/feeds/{feed['id']}?stories=hide", headers=admin_headers)
    assert removed.json == {"deleted": feed["id"], "stories_hidden": 1}
    wait_for(lambda: count_rows(notifier, "SELECT count(*) FROM stories") == 0,
             what="the notifier to drop the hidden story")  # fmt: skip
    assert count_rows(notifier, "SELECT count(*) FROM hidden_stories") == 1
    assert outbox_count(clean_databases, "blog.post_hidden") == 1

    # Shown again by staff: back in the notifier's stories, for the digests still to be sent.
    post_id = count_rows(clean_databases["blog"], "SELECT max(id) FROM posts")
    shown = client.put(f"/api/v1/admin/posts/{post_id}/hidden", json={"hidden": False},
                       headers=admin_headers)  # fmt: skip
    assert shown.status_code == 200, shown.json
    wait_for(lambda: count_rows(notifier, "SELECT count(*) FROM stories") == 1,
             what="the notifier to take the story back")  # fmt: skip
    assert count_rows(notifier, "SELECT count(*) FROM hidden_stories") == 0


def test_feeds_admin_needs_the_token_and_valid_input(client, stack, admin_headers, clean_databases):
    assert client.get("/api/v1/admin/feeds").status_code == 401
    bad = client.post("/api/v1/admin/feeds", json={"url": "ftp://x.org/f"}, headers=admin_headers)
    assert bad.status_code == 400 and "http" in bad.json["error"]["message"]
    assert client.post("/api/v1/admin/feeds", json={}, headers=admin_headers).status_code == 400
    assert client.get("/api/v1/posts?cursor=not-a-cursor").status_code == 400
    assert client.get("/api/v1/posts?limit=1000").status_code == 400


def test_a_directory_that_is_down_delays_links_and_loses_nothing(
    client, stack, services, admin_headers, clean_databases, feed_server, two_cities
):
    url = feed_server.serve("/feed/sister-cities", FEED)
    stack.stop("directory")
    try:
        client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers)
        wait_for(lambda: [p["city_ids"] for p in posts(client)] == [[]],
                 what="the story to be stored while the directory is down")  # fmt: skip
        assert outbox_count(clean_databases, "blog.post_published") == 0
    finally:
        stack.start_worker("directory")
        wait_until_answers(services, "directory")
    wait_for(lambda: [p["city_ids"] for p in posts(client)] == [two_cities],
             timeout=30 + POLL_SECONDS, what="the links once the directory is back")  # fmt: skip
    assert outbox_count(clean_databases, "blog.post_published") == 1


def test_a_hand_out_killed_after_claiming_its_feeds_sends_them_when_its_message_comes_back(
    stack, clean_databases, feed_server, common_settings
):
    """The state a blog worker killed inside ``blog.schedule_fetches`` leaves: its feeds
    claimed for ten minutes, their fetches never sent. The task's message comes back after the
    visibility timeout with the same id; that run must send them, not wait out the lease."""
    from services.blog import feeds, polling
    from shared.celery_app import make_celery
    from shared.db import make_session_factory, session_scope
    from shared.events import utcnow

    for path in ("/feed/one", "/feed/two"):
        feed_server.serve(path, FEED.replace("0123456789ab", path[-3:] * 4))
    urls = [feed_server.url(path) for path in ("/feed/one", "/feed/two")]
    with session_scope(make_session_factory(clean_databases["blog"])) as session:
        for url in urls:
            feeds.add_feed(session, url, utcnow(), allow_private=True)
        polling.claim_due_feeds(session, utcnow(), claimant="killed-hand-out")
    assert feed_server.hits == {}

    # The message coming back: the same task, the same id.
    make_celery("beat-under-test", common_settings).send_task(
        "blog.schedule_fetches", task_id="killed-hand-out"
    )
    wait_for(lambda: feed_server.hits["/feed/one"] and feed_server.hits["/feed/two"],
             what="both claimed feeds to be fetched")  # fmt: skip


def test_a_test_that_empties_the_databases_is_not_shown_answers_cached_before(
    client, gateway_app, stack, clean_databases, redis_client
):
    """What leaked one test's story into the next: answers cached in Redis and in the gateway
    process outlive the rows they came from when nothing moves their generation."""
    from shared.routing import GENERATION_KEY
    from tests.conftest import empty_tables, forget_cached_answers
    from tests.site.conftest import add_stories, story

    add_stories(clean_databases["blog"], [(story("cached-1", "Cached", 1), [])])
    redis_client.incr(GENERATION_KEY.format("blog"))
    assert [post["title"] for post in posts(client)] == ["Cached"]
    assert [post["title"] for post in posts(client)] == ["Cached"]  # now from memory

    empty_tables(clean_databases["blog"])
    forget_cached_answers(redis_client, gateway_app)
    assert posts(client) == []
