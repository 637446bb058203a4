"""Reading posts for the site and the API: newest first, filtered by city, tag or feed, paged
with an opaque cursor (stable while new posts arrive, unlike page numbers)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from services.blog.models import Post, PostCity, PostTag
from services.blog.parser import slugify
from services.blog.post_keys import source_name
from shared.errors import InvalidInput, NotFound

MAX_LIMIT = 100
MAX_CITY_IDS = 500
# What a cursor this API gave out can hold: a post's id (a 32-bit column; SQLite fails on a
# bigger number rather than find nothing) and a moment that converts to UTC and back.
MAX_POST_ID = 2**31 - 1
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def list_posts(
    session: Session,
    city_id: int | None = None,
    tag: str | None = None,
    feed_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
    city_ids: list[int] | None = None,
) -> dict:
    """``city_ids``: stories that mention any of these cities (a city and its sisters)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}")
    wanted = _city_ids(city_id, city_ids)
    query = select(Post).where(Post.hidden.is_(False))
    if wanted is not None:
        query = query.where(
            Post.id.in_(select(PostCity.post_id).where(PostCity.city_id.in_(wanted)))
        )
    if tag:
        tagged = select(PostTag.post_id).where(PostTag.slug == slugify(tag))
        query = query.where(Post.id.in_(tagged))
    if feed_id is not None:
        query = query.where(Post.feed_id == feed_id)
    posts, next_cursor = newest_first(session, query, cursor, limit)
    return {"results": [post_summary(post) for post in posts], "next_cursor": next_cursor}


def newest_first(
    session: Session, query, cursor: str | None, limit: int
) -> tuple[list, str | None]:
    """A page of the posts ``query`` selects, newest first, after ``cursor``; and the cursor
    of the next page (None on the last)."""
    if cursor:
        published, post_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Post.published_at < published,
                and_(Post.published_at == published, Post.id < post_id),
            )
        )
    query = query.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit + 1)
    posts = list(session.scalars(query))
    next_cursor = encode_cursor(posts[limit - 1]) if len(posts) > limit else None
    return posts[:limit], next_cursor


def _city_ids(city_id: int | None, city_ids: list[int] | None) -> set[int] | None:
    if city_ids is None:
        return None if city_id is None else {city_id}
    if not isinstance(city_ids, list) or len(city_ids) > MAX_CITY_IDS:
        raise InvalidInput(f"city_ids must be a list of at most {MAX_CITY_IDS} ids")
    if not all(isinstance(one, int) and not isinstance(one, bool) for one in city_ids):
        raise InvalidInput("city_ids must be whole numbers")
    return set(city_ids) | ({city_id} if city_id is not None else set())


def get_post(session: Session, post_id: int) -> dict:
    post = session.get(Post, post_id)
    if post is None or post.hidden:
        raise NotFound(f"no post with id {post_id}")
    return {
        **post_summary(post),
        "content_html": post.content_html,
        "updated_at": post.updated_at.isoformat() if post.updated_at else None,
    }


def post_summary(post: Post) -> dict:
    return {
        "id": post.id,
        "title": post.title,
        "excerpt": post.excerpt,
        "url": post.url,
        "source_name": source_name(post.key, post.url),
        "image": post.image,
        "author": post.author,
        "published_at": post.published_at.isoformat(),
        "reading_minutes": post.reading_minutes,
        "tags": post.tags,
        "city_ids": post.city_ids,
        "feed_id": post.feed_id,
    }


def encode_cursor(post: Post) -> str:
    raw = f"{post.published_at.isoformat()}|{post.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, post_id = raw.split("|")
        published = datetime.fromisoformat(moment)
        if published.tzinfo is None or not EARLIEST <= published <= LATEST:
            raise ValueError
        if not (post_id.isascii() and post_id.isdigit()):
            raise ValueError
        if not 1 <= int(post_id) <= MAX_POST_ID:
            raise ValueError
        return published, int(post_id)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("the cursor is not one this API gave out") from None
