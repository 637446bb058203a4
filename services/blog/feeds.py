"""The feeds staff register: adding, listing, removing, and what each fetch did to a feed's
state (validators, health, next check)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.blog import intervals
from services.blog.addresses import is_public
from services.blog.links import BadFeedUrl, feed_url
from services.blog.models import Feed, Post
from shared.errors import Conflict, InvalidInput, NotFound


def add_feed(session: Session, url: str, now: datetime, allow_private: bool) -> Feed:
    try:
        address = feed_url(url)
    except BadFeedUrl as error:
        raise InvalidInput(str(error)) from None
    if not allow_private:
        _refuse_literal_private_address(address)
    if session.scalar(select(Feed.id).where(Feed.url == address)) is not None:
        raise Conflict(f"the feed {address} is already registered")
    feed = Feed(
        url=address,
        status="pending",
        error_count=0,
        created_at=now,
        next_check_at=now,
        interval_seconds=int(intervals.DEFAULT_INTERVAL.total_seconds()),
    )
    session.add(feed)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"the feed {address} is already registered") from None
    return feed


def _refuse_literal_private_address(url: str) -> None:
    # Host names are checked where it counts, on the resolved address at every fetch; a
    # literal private address is refused now so staff hear about it at once.
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidInput("feeds on this machine's own addresses are not allowed") from None
        return
    if not is_public(address):
        raise InvalidInput("feeds on private, loopback or link-local addresses are not allowed")


def get_feed(session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFound(f"no feed with id {feed_id}")
    return feed


def remove_feed(session: Session, feed_id: int) -> None:
    """The feed goes; its posts stay (they were published and may have been mailed)."""
    session.delete(get_feed(session, feed_id))


def list_feeds(session: Session) -> list[dict]:
    per_feed = select(Post.feed_id, func.count()).where(Post.feed_id.is_not(None))
    counts = dict(session.execute(per_feed.group_by(Post.feed_id)).all())
    feeds = session.scalars(select(Feed).order_by(Feed.id))
    return [feed_to_dict(feed, counts.get(feed.id, 0)) for feed in feeds]


def feed_to_dict(feed: Feed, post_count: int | None = None) -> dict:
    return {
        "id": feed.id,
        "url": feed.url,
        "title": feed.title,
        "site_url": feed.site_url,
        "status": feed.status,
        "http_status": feed.http_status,
        "error_count": feed.error_count,
        "last_error": feed.last_error,
        "warning": feed.warning,
        "created_at": _iso(feed.created_at),
        "last_fetched_at": _iso(feed.last_fetched_at),
        "last_success_at": _iso(feed.last_success_at),
        "next_check_at": _iso(feed.next_check_at),
        "post_count": post_count,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def record_success(
    feed: Feed,
    now: datetime,
    *,
    status: int,
    etag: str | None,
    last_modified: str | None,
    headers: dict[str, str],
    title: str | None = None,
    site_url: str | None = None,
    warning: str | None = None,
    ttl_minutes: int | None = None,
    interval: timedelta | None = None,
) -> None:
    """A 200 that parsed, or a 304: the feed is healthy; its next check follows its rhythm."""
    feed.status = "not_modified" if status == 304 else "ok"
    feed.http_status = status
    feed.error_count = 0
    feed.last_error = None
    feed.last_fetched_at = feed.last_success_at = now
    feed.claimed_until = feed.claimed_by = None
    if status != 304:
        feed.etag = (etag or "")[:500] or None
        feed.last_modified = (last_modified or "")[:100] or None
        feed.title = title or feed.title
        feed.site_url = site_url or feed.site_url
        feed.warning = warning
    if interval is not None:
        feed.interval_seconds = int(interval.total_seconds())
    feed.next_check_at = intervals.next_success_check(
        timedelta(seconds=feed.interval_seconds),
        intervals.server_delay(headers, ttl_minutes),
        now,
    )


def record_failure(
    feed: Feed,
    now: datetime,
    *,
    message: str,
    status: int | None = None,
    retry_after: float | None = None,
) -> None:
    """Any failure: said on the feed, retried later and later; nothing else is touched."""
    feed.status = "error"
    feed.http_status = status
    feed.error_count += 1
    feed.last_error = message[:1000]
    feed.last_fetched_at = now
    feed.claimed_until = feed.claimed_by = None
    asks = timedelta(seconds=retry_after) if retry_after else timedelta()
    feed.next_check_at = intervals.next_failure_check(
        feed.error_count, min(asks, intervals.MAX_SERVER_DELAY), now
    )
