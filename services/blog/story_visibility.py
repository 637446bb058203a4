"""Staff's view of the stories: every one, hidden or not, a page at a time, and hiding or
showing one again. Hiding withdraws an announced story (``blog.post_hidden``), so no digest
still to be sent carries it; showing it again (``blog.post_shown``, its announcement) returns
it as it was: listed on the site, and news for the digests not yet sent when it was hidden.
Both are numbered as announcements are (the notifier keeps the last of those it handles out of
order) and recorded in the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.blog.city_links import announcement
from services.blog.models import Base, Post
from services.blog.post_queries import newest_first, post_summary
from shared import audit
from shared.errors import InvalidInput, NotFound
from shared.events import publish

MAX_PAGE = 100
MAX_POST_ID = 2**31 - 1


def list_for_staff(session: Session, cursor: str | None = None, limit: int = 25) -> dict:
    """Newest first, hidden ones included (and marked), paged like the public list."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}")
    posts, next_cursor = newest_first(session, select(Post), cursor, limit)
    return {
        "results": [
            {**post_summary(post), "hidden": post.hidden, "featured": post.featured_at is not None}
            for post in posts
        ],
        "next_cursor": next_cursor,
    }


def set_hidden(session: Session, post_id: int, hidden: bool) -> tuple[dict, bool]:
    """Hide a story or show it again. Returns the story and whether anything changed."""
    if not isinstance(hidden, bool):
        raise InvalidInput("hidden must be true or false")
    post = session.get(Post, post_id) if 1 <= post_id <= MAX_POST_ID else None
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    changed = post.hidden != hidden
    if changed:
        post.hidden = hidden
        if post.announced:
            post.revision = (post.revision or 0) + 1
            if hidden:
                withdrawn = {"id": post.id, "revision": post.revision}
                publish(session, Base.metadata, "blog.post_hidden", withdrawn)
            else:
                publish(session, Base.metadata, "blog.post_shown", announcement(post))
        audit.record(
            session,
            Base.metadata,
            "story.hidden" if hidden else "story.shown",
            "story",
            post.id,
            {"title": post.title, "url": post.url},
            related=[("city", city_id) for city_id in post.city_ids or []],
        )
    return {**post_summary(post), "hidden": post.hidden}, changed
