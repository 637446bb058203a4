"""Which cities a post mentions, as the directory sees it, and the post's announcement.

The blog asks ``directory.match_places_many`` with a callback (``blog.link_post_cities``) and
does not wait: a directory that is down only delays the links. When a post's links are current
it is announced (``blog.post_published`` the first time, ``blog.post_updated`` after a change),
in the same transaction that stores them. Requests the directory never answered are sent again
by ``blog.link_pending_posts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from services.blog.models import Base, Post, PostCity
from services.blog.post_queries import post_summary
from services.blog.sanitizer import plain_text
from shared.events import publish

MATCH_TASK = "directory.match_places_many"
LINK_TASK = "blog.link_post_cities"
BATCH = 50
MAX_MATCH_CHARS = 100_000
# A request still unanswered after this long expires in the queue and is sent again.
REQUEST_EXPIRES = timedelta(minutes=15)
MAX_CITIES = 50


@dataclass(frozen=True)
class LinkRequest:
    texts: list[str]
    posts: list[list]  # [post id, content hash] in the order of texts


def link_requests(session: Session, post_ids: list[int], now: datetime) -> list[LinkRequest]:
    """Requests for the posts whose links are not current, in batches; marks them asked."""
    posts = session.scalars(select(Post).where(Post.id.in_(post_ids)).order_by(Post.id)).all()
    requests = []
    for start in range(0, len(posts), BATCH):
        batch = [post for post in posts[start : start + BATCH] if _needs_links(post)]
        for post in batch:
            post.link_requested_at = now
        if batch:
            requests.append(
                LinkRequest(
                    texts=[_match_text(post) for post in batch],
                    posts=[[post.id, post.content_hash] for post in batch],
                )
            )
    return requests


def posts_awaiting_links(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Posts whose links are stale and whose last request has expired unanswered."""
    query = (
        select(Post.id)
        .where(or_(Post.linked_hash.is_(None), Post.linked_hash != Post.content_hash))
        .where(Post.hidden.is_(False))
        .where(
            or_(Post.link_requested_at.is_(None), Post.link_requested_at < now - REQUEST_EXPIRES)
        )
        .order_by(Post.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def apply_links(session: Session, matches: list[list[dict]], posts: list[list]) -> int:
    """Store the cities the directory found and announce each post; returns how many were
    announced. Answers for content that has changed since, and repeated answers, do nothing."""
    announced = 0
    for found, (post_id, content_hash) in zip(matches, posts, strict=True):
        post = session.get(Post, post_id)
        if post is None or post.content_hash != content_hash or post.linked_hash == content_hash:
            continue
        if post.hidden:  # hidden while the directory was asked: never announced
            continue
        city_ids = sorted({int(city["id"]) for city in found})[:MAX_CITIES]
        session.execute(delete(PostCity).where(PostCity.post_id == post.id))
        session.add_all(PostCity(post_id=post.id, city_id=city_id) for city_id in city_ids)
        post.city_ids = city_ids
        post.linked_hash = content_hash
        event = "blog.post_updated" if post.announced else "blog.post_published"
        post.announced = True
        publish(session, Base.metadata, event, announcement(post))
        announced += 1
    return announced


def announcement(post: Post) -> dict:
    """What consumers learn of a post: what the API lists (the content stays here)."""
    return post_summary(post)


def _needs_links(post: Post) -> bool:
    return post.linked_hash != post.content_hash and not post.hidden


def _match_text(post: Post) -> str:
    # The title first: a city named there is the story's subject.
    return f"{post.title}\n{plain_text(post.content_html)}"[:MAX_MATCH_CHARS]
