"""Linking posts to the cities the directory finds in them, and announcing each post once."""

from sqlalchemy import select

from services.blog import city_links
from services.blog.models import Post, PostCity, outbox_events
from services.blog.posts import PostData, store_posts
from shared.db import session_scope
from shared.events import utcnow


def a_post(key: str, title: str, html: str, digest: str) -> PostData:
    return PostData(
        key=key, title=title, author="A", url=f"https://example.org/{key}", image=None,
        excerpt="e", content_html=html, tags=[{"slug": "twinning", "name": "Twinning"}],
        reading_minutes=1, published_at=utcnow(), updated_at=None, content_hash=digest,
    )  # fmt: skip


def events(sessions) -> list[tuple[str, dict]]:
    with sessions() as session:
        rows = session.execute(select(outbox_events).order_by(outbox_events.c.id)).mappings()
        return [(row["event_type"], row["payload"]) for row in rows]


def test_a_post_is_announced_once_its_cities_are_known(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(
            session, None, [a_post("k", "Minneapolis", "<p>Najaf</p>", "h1")], now
        )
        (request,) = city_links.link_requests(session, [post_id], now)
    assert request.texts == ["Minneapolis\nNajaf"] and request.posts == [[post_id, "h1"]]
    assert events(blog_sessions) == []  # not announced before its links are known

    answer = [[{"id": 7, "name": "Minneapolis"}, {"id": 9, "name": "Najaf"}]]
    with session_scope(blog_sessions) as session:
        assert city_links.apply_links(session, answer, request.posts) == 1
    with session_scope(blog_sessions) as session:  # the same answer delivered twice
        assert city_links.apply_links(session, answer, request.posts) == 0

    ((kind, payload),) = events(blog_sessions)
    assert kind == "blog.post_published"
    assert payload["id"] == post_id and payload["city_ids"] == [7, 9]
    assert (
        payload["tags"] == [{"slug": "twinning", "name": "Twinning"}]
        and payload["url"] == "https://example.org/k"
    )
    with blog_sessions() as session:
        assert sorted(session.scalars(select(PostCity.city_id))) == [7, 9]


def test_an_edit_is_announced_as_an_update_and_stale_answers_are_ignored(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "Lyon", "<p>x</p>", "h1")], now)
        city_links.apply_links(session, [[{"id": 1}]], [[post_id, "h1"]])
    with session_scope(blog_sessions) as session:
        store_posts(session, None, [a_post("k", "Lyon and Birmingham", "<p>x</p>", "h2")], now)
        # An answer about the old content arrives late: it must not overwrite anything.
        assert city_links.apply_links(session, [[{"id": 99}]], [[post_id, "h1"]]) == 0
        assert city_links.apply_links(session, [[{"id": 1}, {"id": 2}]], [[post_id, "h2"]]) == 1
    kinds = [kind for kind, _payload in events(blog_sessions)]
    assert kinds == ["blog.post_published", "blog.post_updated"]
    assert events(blog_sessions)[-1][1]["city_ids"] == [1, 2]


def test_unanswered_requests_are_asked_again_after_they_expire(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        ids = store_posts(
            session, None, [a_post("a", "A", "", "h"), a_post("b", "B", "", "h")], now
        )
        city_links.link_requests(session, ids, now)
    with blog_sessions() as session:
        assert city_links.posts_awaiting_links(session, now) == []
        later = now + city_links.REQUEST_EXPIRES * 2
        assert city_links.posts_awaiting_links(session, later) == sorted(ids)
    with session_scope(blog_sessions) as session:
        city_links.apply_links(session, [[], []], [[ids[0], "h"], [ids[1], "h"]])
    with blog_sessions() as session:
        assert city_links.posts_awaiting_links(session, later) == []
        assert session.scalar(select(Post.city_ids).where(Post.id == ids[0])) == []
