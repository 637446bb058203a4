"""Reading posts: newest first, filters, and a cursor that pages through without gaps or
repeats even when stories arrive in between."""

import base64
from datetime import timedelta

import pytest

from services.blog import post_queries
from services.blog.models import PostCity
from services.blog.posts import PostData, store_posts
from shared.db import session_scope
from shared.errors import InvalidInput
from shared.events import utcnow


def story(n: int, published, tag: str) -> PostData:
    return PostData(
        key=f"k{n}", title=f"Story {n}", author=None, url=f"https://example.org/{n}",
        image=None, excerpt="e", content_html="<p>x</p>", tags=[{"slug": tag, "name": tag}],
        reading_minutes=1, published_at=published, updated_at=None, content_hash=str(n),
    )  # fmt: skip


def test_pages_filters_and_cursor(blog_sessions):
    now = utcnow()
    # 25 stories, two of them published at the same moment (the id breaks the tie).
    moments = [now - timedelta(hours=n) for n in range(24)] + [now - timedelta(hours=5)]
    with session_scope(blog_sessions) as session:
        ids = store_posts(
            session,
            None,
            [story(n, m, "even" if n % 2 == 0 else "odd") for n, m in enumerate(moments)],
            now,
        )
        session.add_all(PostCity(post_id=post_id, city_id=7) for post_id in ids[:3])
        session.add(PostCity(post_id=ids[10], city_id=8))

    seen, cursor = [], None
    while True:
        with blog_sessions() as session:
            page = post_queries.list_posts(session, cursor=cursor, limit=10)
        seen += [post["id"] for post in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if len(seen) == 10:  # a new story arrives while the reader pages
            with session_scope(blog_sessions) as session:
                store_posts(session, None, [story(99, now, "odd")], now)
    assert len(seen) == len(set(seen)) == 25  # no repeats, no gaps, the newcomer on page 1
    with blog_sessions() as session:
        published = [post_queries.get_post(session, post_id)["published_at"] for post_id in seen]
        assert published == sorted(published, reverse=True)

        assert len(post_queries.list_posts(session, tag="Even", limit=100)["results"]) == 13
        assert post_queries.list_posts(session, limit=1)["results"][0]["title"] == "Story 99"
        assert {p["id"] for p in post_queries.list_posts(session, city_id=7)["results"]} == set(
            ids[:3]
        )
        # A city and its sisters: stories that mention any of them, each once.
        assert {
            p["id"] for p in post_queries.list_posts(session, city_ids=[7, 8, 9])["results"]
        } == {*ids[:3], ids[10]}
        assert post_queries.list_posts(session, city_ids=[])["results"] == []
        assert post_queries.list_posts(session, feed_id=5)["results"] == []
        with pytest.raises(InvalidInput):
            post_queries.list_posts(session, city_ids=["7"])
        with pytest.raises(InvalidInput):
            post_queries.list_posts(session, cursor="bm9wZQ")
        with pytest.raises(InvalidInput):
            post_queries.list_posts(session, limit=0)


def forged_cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    "2026-01-01T00:00:00+00:00|" + "9" * 40,  # past SQLite's 64-bit integers
    "2026-01-01T00:00:00+00:00|2147483648",  # past the 32-bit id column
    "2026-01-01T00:00:00+00:00|0",
    "2026-01-01T00:00:00+00:00|-5",
    "2026-01-01T00:00:00+00:00|\u0661\u0662",  # digits, but not ASCII ones
    "9999-12-31T23:59:59-14:00|5",  # no such moment in UTC
    "0001-01-01T00:00:00+14:00|5",
]


@pytest.mark.parametrize("raw", FORGED_CURSORS)
def test_a_forged_cursor_is_refused_as_invalid_input_not_a_crash(blog_sessions, raw):
    with session_scope(blog_sessions) as session:
        store_posts(session, None, [story(1, utcnow(), "even")], utcnow())
    with blog_sessions() as session, pytest.raises(InvalidInput, match="cursor"):
        post_queries.list_posts(session, cursor=forged_cursor(raw))
