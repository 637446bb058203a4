"""The story staff feature on the home page: one at a time, so featuring a story takes the
mark from the one featured before; a hidden story is never featured. Each change is recorded
in the audit log; the task marks the cached pages of stories stale after the commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.blog.models import Base, Post
from services.blog.post_queries import post_summary
from shared import audit
from shared.errors import Conflict, InvalidInput, NotFound

MAX_POST_ID = 2**31 - 1


def featured_post(session: Session) -> dict:
    """``{"post": the featured story, or None}``. Should two have been featured at once (two
    staff at the same moment), the later one is the one."""
    post = session.scalar(
        select(Post)
        .where(Post.featured_at.is_not(None), Post.hidden.is_(False))
        .order_by(Post.featured_at.desc(), Post.id.desc())
        .limit(1)
    )
    return {"post": post_summary(post) if post is not None else None}


def set_featured(
    session: Session, post_id: int, featured: bool, now: datetime
) -> tuple[dict, bool]:
    """Feature a story (the one featured before is not any more) or stop featuring it.
    Returns the story and whether anything changed."""
    if not isinstance(featured, bool):
        raise InvalidInput("featured must be true or false")
    post = session.get(Post, post_id) if 1 <= post_id <= MAX_POST_ID else None
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    if featured and post.hidden:
        raise Conflict("a hidden story cannot be featured: show it first")
    changed = (post.featured_at is not None) != featured
    if changed:
        before = [] if not featured else _featured_ids(session, post.id)
        if before:
            session.execute(update(Post).where(Post.id.in_(before)).values(featured_at=None))
        post.featured_at = now if featured else None
        audit.record(
            session,
            Base.metadata,
            "story.featured" if featured else "story.unfeatured",
            "story",
            post.id,
            {"title": post.title, "url": post.url, "unfeatured": before},
            related=[("story", other) for other in before],
        )
    return story_state(post), changed


def story_state(post: Post) -> dict:
    return {
        "id": post.id,
        "title": post.title,
        "url": post.url,
        "hidden": post.hidden,
        "featured": post.featured_at is not None,
    }


def _featured_ids(session: Session, but: int) -> list[int]:
    return list(
        session.scalars(select(Post.id).where(Post.featured_at.is_not(None), Post.id != but))
    )
