"""Polling feeds from a real local server into the blog's real database: stored once, updated
when changed, failures written on the feed with posts untouched, backoff and recovery."""

import itertools
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.blog import feeds, polling
from services.blog.models import Feed, Post, PostTag
from shared.db import session_scope
from shared.events import utcnow
from tests.blog.conftest import medium_feed, needs_corpora
from tests.feed_server import cut_short, hang

pytestmark = needs_corpora

MEDIUM_XML = "text/xml; charset=UTF-8"


def add(sessions, url: str) -> int:
    with session_scope(sessions) as session:
        return feeds.add_feed(session, url, utcnow(), allow_private=True).id


# The local server plays Medium: as a custom domain, its stories get Medium's global keys.
PLAYS_MEDIUM = frozenset({"127.0.0.1"})


def poll(sessions, feed_id: int, **options) -> polling.PollResult:
    options.setdefault("medium_domains", PLAYS_MEDIUM)
    return polling.poll_feed(sessions, feed_id, allow_private=True, **options)


def posts(sessions) -> list[Post]:
    with sessions() as session:
        return list(session.scalars(select(Post).order_by(Post.published_at.desc())))


def feed_state(sessions, feed_id: int) -> Feed:
    with sessions() as session:
        return session.get(Feed, feed_id)


def test_a_medium_feed_is_stored_as_clean_posts(blog_sessions, feed_server):
    url = feed_server.serve("/feed/@jinnabaalu", medium_feed("jinnabaalu-user-2026.xml"),
                            content_type=MEDIUM_XML, etag='"a1"')  # fmt: skip
    feed_id = add(blog_sessions, url)
    result = poll(blog_sessions, feed_id)
    assert (result.outcome, len(result.changed_post_ids)) == ("stored", 10)

    stored = posts(blog_sessions)
    assert len(stored) == 10
    assert all(post.key.startswith("medium:") for post in stored)
    assert all("source=" not in post.url and "?" not in post.url for post in stored)
    assert not any("_/stat" in post.content_html for post in stored)
    assert not any("<iframe" in post.content_html for post in stored)
    assert sum(post.content_html.count("<img") for post in stored) == 10  # the figures
    assert any("youtube.com" in post.content_html or "medium.com/media" in post.content_html
               for post in stored)  # fmt: skip
    first = stored[0]
    assert first.image.startswith("https://cdn-images-1.medium.com/")
    assert first.author == "Jinna Baalu" and first.reading_minutes >= 1
    assert first.excerpt.endswith("…") and len(first.excerpt.split()) <= 60
    assert {"slug": "docker-registry", "name": "Docker Registry"} in first.tags

    state = feed_state(blog_sessions, feed_id)
    assert (state.status, state.etag, state.error_count) == ("ok", '"a1"', 0)
    assert state.title == "Stories by Jinna Baalu on Medium"
    assert state.next_check_at > utcnow() + timedelta(minutes=14)


def test_polling_twice_stores_nothing_twice_and_a_304_is_not_parsed(blog_sessions, feed_server):
    url = feed_server.serve("/feed/@mauro", medium_feed("mauromadeit-user-2018.xml"),
                            content_type=MEDIUM_XML, etag='"v1"')  # fmt: skip
    feed_id = add(blog_sessions, url)
    assert len(poll(blog_sessions, feed_id).changed_post_ids) == 10

    again = poll(blog_sessions, feed_id)
    assert again.outcome == "not_modified" and again.changed_post_ids == []
    assert again.entries == 0  # the 304 carried no feed to read
    assert feed_server.not_modified["/feed/@mauro"] == 1

    # Without validators the server sends it all again: parsed, compared, nothing changes.
    feed_server.routes["/feed/@mauro"].etag = None
    third = poll(blog_sessions, feed_id)
    assert third.outcome == "stored" and third.changed_post_ids == []
    stored = posts(blog_sessions)
    assert len(stored) == 10
    with blog_sessions() as session:
        tag_rows = session.scalar(select(func.count()).select_from(PostTag))
    assert tag_rows == sum(len(post.tags) for post in stored) > 0


def test_the_same_story_from_two_feeds_is_one_post(blog_sessions, feed_server):
    body = medium_feed("mauromadeit-user-2018.xml")
    one = add(blog_sessions, feed_server.serve("/feed/@mauro", body, content_type=MEDIUM_XML))
    # The same items under other link forms (subdomain host, another tracking query).
    other = re.sub(
        rb"<link>https://medium.com/([^<?]+)\?source=rss-",
        rb"<link>https://mauromadeit.medium.com/\1?source=another-",
        body,
    )
    assert other.count(b"<link>https://mauromadeit.medium.com/") >= 10
    two = add(blog_sessions, feed_server.serve("/feed/vuetify", other, content_type=MEDIUM_XML))
    assert len(poll(blog_sessions, one).changed_post_ids) == 10
    assert poll(blog_sessions, two).changed_post_ids == []
    assert len(posts(blog_sessions)) == 10


def test_a_feed_off_medium_cannot_take_over_a_medium_story(blog_sessions, feed_server):
    body = medium_feed("mauromadeit-user-2018.xml")
    medium = add(blog_sessions, feed_server.serve("/feed/@mauro", body, content_type=MEDIUM_XML))
    assert len(poll(blog_sessions, medium).changed_post_ids) == 10
    before = {post.id: (post.key, post.content_hash) for post in posts(blog_sessions)}

    # Another host publishes the same Medium guids with its own words.
    forged = re.sub(rb"<content:encoded>.*?</content:encoded>",
                    rb"<content:encoded><![CDATA[<p>Taken over.</p>]]></content:encoded>",
                    body, flags=re.S)  # fmt: skip
    assert forged.count(b"Taken over.") == 10 and forged.count(b"https://medium.com/p/") >= 10
    url = feed_server.serve("/feed/forged", forged, content_type=MEDIUM_XML)
    hostile = add(blog_sessions, url.replace("127.0.0.1", "localhost"))
    result = poll(blog_sessions, hostile)

    assert result.outcome == "stored"
    assert not set(result.changed_post_ids) & before.keys()
    after = {post.id: (post.key, post.content_hash) for post in posts(blog_sessions)}
    assert {post_id: after[post_id] for post_id in before} == before
    # What it published is its own, keyed within its feed.
    assert all(
        after[post_id][0].startswith(f"{hostile}:guid:") for post_id in after.keys() - before.keys()
    )


def test_a_story_belongs_to_the_feed_that_stored_it_until_that_feed_goes(
    blog_sessions, feed_server
):
    body = medium_feed("mauromadeit-user-2018.xml")
    publication = add(blog_sessions, feed_server.serve("/feed/pub", body, content_type=MEDIUM_XML))
    poll(blog_sessions, publication)
    # The author's feed carries the same stories, each a little different.
    other = body.replace(b"<content:encoded><![CDATA[", b"<content:encoded><![CDATA[<p>Repost.</p>")
    assert other.count(b"Repost.") == 10
    author = add(blog_sessions, feed_server.serve("/feed/@author", other, content_type=MEDIUM_XML))
    assert poll(blog_sessions, author).changed_post_ids == []
    assert not any("Repost." in post.content_html for post in posts(blog_sessions))
    assert {post.feed_id for post in posts(blog_sessions)} == {publication}

    with session_scope(blog_sessions) as session:
        feeds.remove_feed(session, publication, "keep", utcnow())
    assert len(poll(blog_sessions, author).changed_post_ids) == 10
    stored = posts(blog_sessions)
    assert len(stored) == 10 and all("Repost." in post.content_html for post in stored)
    assert {post.feed_id for post in stored} == {author}


def test_a_changed_story_is_updated_and_one_that_drops_out_is_kept(blog_sessions, feed_server):
    body = medium_feed("jinnabaalu-user-2026.xml")
    url = feed_server.serve("/feed/@j", body, content_type=MEDIUM_XML)
    feed_id = add(blog_sessions, url)
    poll(blog_sessions, feed_id)
    before = {post.key: post for post in posts(blog_sessions)}

    # An edit to the first story, and the last item gone from the feed.
    edited = body.replace(b"Managing Docker images across", b"Managing container images across")
    last_item = edited.rindex(b"<item>")
    edited = edited[:last_item] + edited[edited.rindex(b"</item>") + len(b"</item>") :]
    feed_server.serve("/feed/@j", edited, content_type=MEDIUM_XML)
    result = poll(blog_sessions, feed_id)
    assert len(result.changed_post_ids) == 1

    after = {post.key: post for post in posts(blog_sessions)}
    assert after.keys() == before.keys()
    (changed,) = [key for key in after if after[key].content_hash != before[key].content_hash]
    assert "container images" in after[changed].content_html
    assert after[changed].id == before[changed].id


@pytest.mark.parametrize(
    ("route", "says", "status"),
    [
        ({"status": 403, "body": b"Forbidden", "content_type": "text/plain"}, "answered 403", 403),
        ({"status": 429, "body": b"slow down", "headers": {"Retry-After": "7200"}}, "429", 429),
        ({"status": 503, "body": b"down"}, "answered 503", 503),
        ({"body": b"<html><head><title>Just a moment...</title></head><body>"
                  b"<script src='/cdn-cgi/challenge-platform/x.js'></script></body></html>",
          "content_type": "text/html"}, "challenge", 200),
        ({"body": b"<html><body><h1>Our blog</h1></body></html>", "content_type": "text/html"},
         "web page", 200),
        ({"body": b"this is not xml at all"}, "not an RSS or Atom feed", 200),
        ({"custom": cut_short(b"<?xml version='1.0'?><rss><channel><title>x")}, "incomplete",
         None),
    ],
)  # fmt: skip
def test_failures_are_recorded_and_posts_untouched(blog_sessions, feed_server, route, says, status):
    url = feed_server.serve("/feed", medium_feed("tag-cryptocurrency-2026.xml"),
                            content_type=MEDIUM_XML)  # fmt: skip
    feed_id = add(blog_sessions, url)
    poll(blog_sessions, feed_id)
    kept = {(post.key, post.content_hash) for post in posts(blog_sessions)}

    feed_server.serve("/feed", **route)
    result = poll(blog_sessions, feed_id)
    assert result.outcome == "error" and says in result.error

    state = feed_state(blog_sessions, feed_id)
    assert (state.status, state.error_count, state.http_status) == ("error", 1, status)
    assert says in state.last_error
    assert {(post.key, post.content_hash) for post in posts(blog_sessions)} == kept
    if "Retry-After" in route.get("headers", {}):
        assert state.next_check_at >= utcnow() + timedelta(hours=2)


def test_a_hanging_server_is_a_timeout(blog_sessions, feed_server):
    feed_id = add(blog_sessions, feed_server.serve("/feed", custom=hang(5)))
    result = poll(blog_sessions, feed_id, timeout=(1, 0.5))
    assert result.outcome == "error" and "time" in result.error


def test_a_failing_feed_backs_off_and_recovers(blog_sessions, feed_server):
    body = medium_feed("tag-cryptocurrency-2026.xml")
    feed_id = add(blog_sessions, feed_server.serve("/feed", status=500, body=b"oops"))
    waits = []
    now = utcnow()
    for _ in range(5):
        poll(blog_sessions, feed_id, now=now)
        state = feed_state(blog_sessions, feed_id)
        waits.append(state.next_check_at - now)
    assert state.error_count == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert timedelta(hours=4) <= waits[-1] <= timedelta(hours=24, minutes=30)

    with session_scope(blog_sessions) as session:  # still scheduled, never dropped
        assert feed_id in polling.claim_due_feeds(session, now + timedelta(hours=25))

    feed_server.serve("/feed", body, content_type=MEDIUM_XML)  # the server heals
    assert poll(blog_sessions, feed_id).outcome == "stored"
    state = feed_state(blog_sessions, feed_id)
    assert (state.status, state.error_count, state.last_error) == ("ok", 0, None)
    assert len(posts(blog_sessions)) == 10


def test_the_scheduler_hands_out_due_feeds_once(blog_sessions, feed_server):
    first = add(blog_sessions, feed_server.url("/a"))
    second = add(blog_sessions, feed_server.url("/b"))
    now = utcnow()
    with session_scope(blog_sessions) as session:
        session.get(Feed, second).next_check_at = now + timedelta(hours=1)
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, now) == [first]
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, now) == []  # held while it is fetched
    with session_scope(blog_sessions) as session:
        later = now + polling.CLAIM_LEASE + timedelta(seconds=1)
        assert polling.claim_due_feeds(session, later) == [first]  # a lost fetch comes back


def test_a_hand_out_that_died_before_sending_gets_its_unsent_feeds_back(blog_sessions, feed_server):
    # The hand-out claimed three feeds and was killed after sending the first fetch only.
    ids = [add(blog_sessions, feed_server.serve(f"/{name}", b"x")) for name in "abc"]
    now = utcnow()
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, now, claimant="hand-out-1") == ids
    poll(blog_sessions, ids[0])  # the one fetch that went out

    # Another hand-out finds them held; the redelivered one gets back what it never sent.
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, now, claimant="hand-out-2") == []
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, now, claimant="hand-out-1") == ids[1:]
    for feed_id in ids[1:]:
        poll(blog_sessions, feed_id)
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, now, claimant="hand-out-1") == []


def test_a_feed_is_registered_once_and_private_addresses_are_refused(blog_sessions):
    from shared.errors import Conflict, InvalidInput

    with session_scope(blog_sessions) as session:
        feeds.add_feed(session, "medium.com/sister-cities", utcnow(), allow_private=False)
    with pytest.raises(Conflict), session_scope(blog_sessions) as session:
        feeds.add_feed(session, "https://medium.com/feed/sister-cities", utcnow(), False)
    private_addresses = [
        "http://127.0.0.1:8080/feed",
        "http://10.0.0.5/rss",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/feed",
    ]
    for private in private_addresses:
        with pytest.raises(InvalidInput), session_scope(blog_sessions) as session:
            feeds.add_feed(session, private, utcnow(), allow_private=False)
