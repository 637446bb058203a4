"""Storing a feed's entries as posts: one post per story, inserted when new, updated only when
what readers see changed, left alone otherwise (and kept when it drops out of the feed)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.blog.links import canonical_link, post_key
from services.blog.models import Post, PostTag
from services.blog.parser import ParsedEntry
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


def post_from_entry(feed_id: int, feed_url: str, entry: ParsedEntry, now: datetime) -> PostData:
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
        key=post_key(feed_id, entry.guid, entry.link, entry.title + entry.html),
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
    links worked out, then announcing). Running it again with the same posts changes nothing."""
    unique = {post.key: post for post in reversed(posts)}  # the first of duplicates wins
    if not unique:
        return []
    existing = {
        post.key: post for post in session.scalars(select(Post).where(Post.key.in_(unique)))
    }
    changed: list[Post] = []
    for key, data in unique.items():
        post = existing.get(key)
        if post is None:
            post = Post(key=key, feed_id=feed_id, first_seen_at=now, city_ids=[])
            session.add(post)
        elif post.content_hash == data.content_hash:
            continue
        _fill(post, data, now)
        changed.append(post)
    session.flush()
    for post in changed:
        session.execute(delete(PostTag).where(PostTag.post_id == post.id))
        session.add_all(PostTag(post_id=post.id, slug=tag["slug"]) for tag in post.tags)
    return [post.id for post in changed]


def _fill(post: Post, data: PostData, now: datetime) -> None:
    post.title = data.title
    post.author = data.author
    post.url = data.url
    post.image = data.image
    post.excerpt = data.excerpt
    post.content_html = data.content_html
    post.tags = data.tags
    post.reading_minutes = data.reading_minutes
    post.published_at = data.published_at
    post.updated_at = data.updated_at
    post.content_hash = data.content_hash
    post.changed_at = now
