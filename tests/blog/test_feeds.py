"""Removing a feed: staff say what happens to its stories. Kept, they stay listed; hidden,
they are stored still but listed nowhere, found by no id, and never announced."""

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from services.blog import city_links, feeds, polling, post_queries
from services.blog.models import Post, PostCity, outbox_events
from services.blog.posts import PostData, store_posts
from shared.db import session_scope
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import utcnow


def story(key: str, digest: str) -> PostData:
    return PostData(
        key=key, title=f"Story {key}", author=None, url=f"https://example.org/{key}",
        image=None, excerpt="e", content_html="<p>x</p>", tags=[{"slug": "twin", "name": "Twin"}],
        reading_minutes=1, published_at=utcnow(), updated_at=None, content_hash=digest,
    )  # fmt: skip


def two_feeds_with_stories(sessions) -> tuple[int, int, list[int], list[int]]:
    """Two feeds, two stories each, all linked to city 7."""
    now = utcnow()
    with session_scope(sessions) as session:
        gone, staying = (
            feeds.add_feed(session, f"https://{name}.example.org/feed", now, False).id
            for name in ("gone", "staying")
        )
        hidden = store_posts(session, gone, [story("a", "1"), story("b", "2")], now)
        shown = store_posts(session, staying, [story("c", "3"), story("d", "4")], now)
        session.add_all(PostCity(post_id=post_id, city_id=7) for post_id in hidden + shown)
    return gone, staying, hidden, shown


def listed(sessions, **filters) -> set[int]:
    with sessions() as session:
        page = post_queries.list_posts(session, limit=100, **filters)
    return {post["id"] for post in page["results"]}


def test_removing_a_feed_and_hiding_its_stories_lists_them_nowhere_and_finds_none_by_id(
    blog_sessions,
):
    gone, _, hidden, shown = two_feeds_with_stories(blog_sessions)
    with session_scope(blog_sessions) as session:
        assert feeds.remove_feed(session, gone, "hide", utcnow()) == 2

    assert listed(blog_sessions) == set(shown)
    assert listed(blog_sessions, city_id=7) == set(shown)
    assert listed(blog_sessions, city_ids=[7, 8]) == set(shown)
    assert listed(blog_sessions, tag="twin") == set(shown)
    assert listed(blog_sessions, feed_id=gone) == set()
    with blog_sessions() as session:
        for post_id in hidden:
            with pytest.raises(NotFound):
                post_queries.get_post(session, post_id)
        assert post_queries.get_post(session, shown[0])["id"] == shown[0]
        # Stored still: mailed once, and the same story may come back through another feed.
        assert session.scalar(select(Post.hidden).where(Post.id == hidden[0])) is True


def test_removing_a_feed_and_keeping_its_stories_leaves_them_listed(blog_sessions):
    gone, _, kept, shown = two_feeds_with_stories(blog_sessions)
    with session_scope(blog_sessions) as session:
        assert feeds.remove_feed(session, gone, "keep", utcnow()) == 0
    assert listed(blog_sessions) == listed(blog_sessions, city_id=7) == set(kept + shown)
    with blog_sessions() as session:
        assert post_queries.get_post(session, kept[0])["feed_id"] is None


def test_removing_a_feed_needs_a_choice_for_its_stories(blog_sessions):
    gone, *_ = two_feeds_with_stories(blog_sessions)
    with session_scope(blog_sessions) as session, pytest.raises(InvalidInput, match="keep or hide"):
        feeds.remove_feed(session, gone, "delete", utcnow())
    assert len(listed(blog_sessions)) == 4
    with session_scope(blog_sessions) as session, pytest.raises(NotFound):
        feeds.remove_feed(session, 999_999, "keep", utcnow())


def test_a_story_hidden_while_its_cities_were_asked_for_is_never_announced(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        feed_id = feeds.add_feed(session, "https://gone.example.org/feed", now, False).id
        (post_id,) = store_posts(session, feed_id, [story("a", "1")], now)
        (request,) = city_links.link_requests(session, [post_id], now)
    with session_scope(blog_sessions) as session:
        feeds.remove_feed(session, feed_id, "hide", utcnow())

    with session_scope(blog_sessions) as session:
        assert city_links.apply_links(session, [[{"id": 7}]], request.posts) == 0
        assert city_links.link_requests(session, [post_id], now) == []
        # The periodic sweep does not ask again either.
        assert post_id not in city_links.posts_awaiting_links(
            session, now + city_links.REQUEST_EXPIRES * 2
        )
    with blog_sessions() as session:
        assert session.execute(select(outbox_events)).all() == []


def test_a_paused_feed_is_not_handed_out_nor_polled_until_resumed(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        feed_id = feeds.add_feed(session, "https://paused.example.org/feed", now, False).id
    later = now + timedelta(days=2)
    with session_scope(blog_sessions) as session:
        assert feeds.set_paused(session, feed_id, True, now).paused_at == now
        assert feeds.set_paused(session, feed_id, True, later).paused_at == now  # once
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, later) == []
        with pytest.raises(Conflict, match="paused"):
            feeds.request_poll(session, feed_id)
        with pytest.raises(InvalidInput):
            feeds.set_paused(session, feed_id, "no", later)
    with session_scope(blog_sessions) as session:
        resumed = feeds.set_paused(session, feed_id, False, later)
        assert resumed.paused_at is None and resumed.next_check_at == later
    with session_scope(blog_sessions) as session:
        assert polling.claim_due_feeds(session, later) == [feed_id]
    with blog_sessions() as session:
        changes = session.scalars(text("SELECT action FROM audit_log ORDER BY id")).all()
    assert changes == ["feed.added", "feed.paused", "feed.resumed"]
