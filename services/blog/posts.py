"""Storing a feed's entries as posts: one post per story, inserted when new, updated only when
what readers see changed, left alone otherwise (and kept when it drops out of the feed).

A post belongs to the feed that first stored it: another feed that carries the same story (a
Medium story in its publication's feed and in its author's) never overwrites it, so no feed
can rewrite or re-announce what another published. A post whose feed was removed is taken over
by the next feed that carries it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from services.blog.links import canonical_link
from services.blog.models import Post, PostTag
from services.blog.parser import ParsedEntry
from services.blog.post_keys import post_key
from services.blog.sanitizer import clean_content, plain_title


@dataclass(frozen=True)
class PostData:
    key: str
    title: str
    author: str | None
    url: str
    image: str | None
    excerpt: str
    content_html: str
    tags: list[dict]
    reading_minutes: int
    published_at: datetime
    updated_at: datetime | None
    content_hash: str


def post_from_entry(
    feed_id: int, feed_url: str, entry: ParsedEntry, now: datetime, *, from_medium: bool
) -> PostData:
    link = canonical_link(entry.link) or canonical_link(entry.guid) or feed_url
    content = clean_content(entry.html, base_url=link)
    title = plain_title(entry.title) or content.excerpt[:80] or "Untitled"
    # A date in the future would pin a story to the top of the blog for ever.
    published = min(entry.published or now, now)
    tags = [{"slug": tag.slug, "name": tag.name} for tag in entry.tags]
    image = content.image or entry.image
    # The link is left out: the same story reached through another feed comes with another
    # link form, and must not count as an edit.
    shown = {
        "title": title,
        "author": entry.author,
        "image": image,
        "html": content.html,
        "tags": tags,
        "published": published.isoformat(),
    }
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()
    return PostData(
        key=post_key(
            feed_id, entry.guid, entry.link, entry.title + entry.html, from_medium=from_medium
        ),
        title=title[:1000],
        author=entry.author,
        url=link[:2000],
        image=image,
        excerpt=content.excerpt,
        content_html=content.html,
        tags=tags,
        reading_minutes=content.reading_minutes,
        published_at=published,
        updated_at=entry.updated,
        content_hash=digest,
    )


def store_posts(session: Session, feed_id: int, posts: list[PostData], now: datetime) -> list[int]:
    """Insert new posts and update changed ones; return the ids of both (they need their city
    links worked out, then announcing). Running it again with the same posts changes nothing.

    Statements go in bulk (one INSERT for every new post of a feed): a poll stores ten posts at
    a time, and object-by-object flushing cost more than parsing them."""
    unique = {post.key: post for post in reversed(posts)}  # the first of duplicates wins
    if not unique:
        return []
    rows = session.execute(
        select(Post.key, Post.id, Post.content_hash, Post.feed_id).where(Post.key.in_(unique))
    ).all()
    known = {key for key, *_ in rows}
    orphans = [post_id for _key, post_id, _hash, owner in rows if owner is None]
    if orphans:
        session.execute(update(Post).where(Post.id.in_(orphans)).values(feed_id=feed_id))
    own = {
        key: (post_id, content_hash)
        for key, post_id, content_hash, owner in rows
        if owner in (feed_id, None)
    }
    new = [
        {
            **_columns(data, now),
            "key": key,
            "feed_id": feed_id,
            "first_seen_at": now,
            "city_ids": [],
            "announced": False,
        }
        for key, data in unique.items()
        if key not in known
    ]
    edited = {
        own[key][0]: data
        for key, data in unique.items()
        if key in own and own[key][1] != data.content_hash
    }
    ids: list[int] = []
    if new:
        returning = insert(Post).returning(Post.id, sort_by_parameter_order=True)
        ids += session.scalars(returning, new).all()
    for post_id, data in edited.items():
        session.execute(update(Post).where(Post.id == post_id).values(**_columns(data, now)))
    if edited:
        session.execute(delete(PostTag).where(PostTag.post_id.in_(list(edited))))
        ids += list(edited)
    tag_lists = [row["tags"] for row in new] + [data.tags for data in edited.values()]
    tags = [
        {"post_id": post_id, "slug": tag["slug"]}
        for post_id, post_tags in zip(ids, tag_lists, strict=True)
        for tag in post_tags
    ]
    if tags:
        session.execute(insert(PostTag), tags)
    return ids


def _columns(data: PostData, now: datetime) -> dict:
    return {
        "title": data.title,
        "author": data.author,
        "url": data.url,
        "image": data.image,
        "excerpt": data.excerpt,
        "content_html": data.content_html,
        "tags": data.tags,
        "reading_minutes": data.reading_minutes,
        "published_at": data.published_at,
        "updated_at": data.updated_at,
        "content_hash": data.content_hash,
        "changed_at": now,
    }
