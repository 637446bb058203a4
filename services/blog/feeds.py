"""The feeds staff register: adding, listing, removing, and what each fetch did to a feed's
state (validators, health, next check). Staff's changes are recorded in the audit log."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.blog import intervals, websub
from services.blog.addresses import is_public
from services.blog.links import BadFeedUrl, feed_url
from services.blog.models import Base, Feed, Post
from shared import audit
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import publish_many

# Ids are 32-bit columns: SQLite fails on a bigger number rather than find nothing.
MAX_ID = 2**31 - 1


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
    audit.record(session, Base.metadata, "feed.added", "feed", feed.id, {"url": address})
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
    feed = session.get(Feed, feed_id) if 1 <= feed_id <= MAX_ID else None
    if feed is None:
        raise NotFound(f"no feed with id {feed_id}")
    return feed


# What happens to a removed feed's stories: staff choose, since either can be right (a feed
# that moved elsewhere keeps its history; one added by mistake should leave no trace).
STORY_CHOICES = ("keep", "hide")


def remove_feed(session: Session, feed_id: int, stories: str, now: datetime) -> int:
    """The feed goes; its posts stay stored (they were published and may have been mailed),
    listed as before (``keep``) or shown nowhere public (``hide``; those already announced
    are withdrawn with ``blog.post_hidden``, so no digest still to be sent carries them).
    Its hub subscriptions are to be cancelled (``websub``). Returns how many were hidden."""
    if stories not in STORY_CHOICES:
        raise InvalidInput("say what happens to the feed's stories: keep or hide")
    feed = get_feed(session, feed_id)
    hidden = 0
    if stories == "hide":
        # Before the delete: the foreign key then forgets which feed a post came from.
        announced = select(Post.id).where(
            Post.feed_id == feed.id, Post.announced.is_(True), Post.hidden.is_(False)
        )
        withdrawn = [{"id": post_id} for post_id in session.scalars(announced.order_by(Post.id))]
        hide = update(Post).where(Post.feed_id == feed.id).values(hidden=True)
        hidden = session.execute(hide).rowcount
        publish_many(session, Base.metadata, "blog.post_hidden", withdrawn)
    websub.end_subscriptions(session, feed.id, now)
    audit.record(
        session,
        Base.metadata,
        "feed.removed",
        "feed",
        feed.id,
        {"url": feed.url, "title": feed.title, "stories": stories, "stories_hidden": hidden},
    )
    session.delete(feed)
    return hidden


MAX_FEED_CITIES = 50


def set_feed_cities(session: Session, feed_id: int, city_ids: list[int]) -> tuple[dict, list[int]]:
    """The directory cities of the organisation a feed belongs to (evidence for its stories'
    city links). Returns the feed and its stories, whose links are now to be worked out
    again."""
    if not isinstance(city_ids, list) or len(city_ids) > MAX_FEED_CITIES:
        raise InvalidInput(f"city_ids must be a list of at most {MAX_FEED_CITIES} ids")
    if not all(
        isinstance(one, int) and not isinstance(one, bool) and 1 <= one <= MAX_ID
        for one in city_ids
    ):
        raise InvalidInput(f"city_ids must be whole numbers from 1 to {MAX_ID}")
    feed = get_feed(session, feed_id)
    wanted = sorted(set(city_ids))
    post_ids: list[int] = []
    if wanted != sorted(feed.city_ids or []):
        audit.record(
            session,
            Base.metadata,
            "feed.cities_set",
            "feed",
            feed.id,
            {"city_ids": {"before": sorted(feed.city_ids or []), "after": wanted}},
        )
        feed.city_ids = wanted
        stale = update(Post).where(Post.feed_id == feed.id).values(linked_hash=None)
        session.execute(stale)
        post_ids = list(session.scalars(select(Post.id).where(Post.feed_id == feed.id)))
    return feed_to_dict(feed), post_ids


def set_paused(session: Session, feed_id: int, paused: bool, now: datetime) -> Feed:
    """Staff pause a feed (not fetched, its hub subscription ended: a hub's deliveries are
    refused) or resume it (fetched at the next hand-out, which finds its hub again)."""
    if not isinstance(paused, bool):
        raise InvalidInput("paused must be true or false")
    feed = get_feed(session, feed_id)
    if paused == (feed.paused_at is not None):
        return feed
    if paused:
        feed.paused_at = now
        websub.end_subscriptions(session, feed.id, now)
    else:
        feed.paused_at = None
        feed.next_check_at = now
    change = "feed.paused" if paused else "feed.resumed"
    audit.record(session, Base.metadata, change, "feed", feed.id, {"url": feed.url})
    return feed


def request_poll(session: Session, feed_id: int) -> Feed:
    """Staff asked for a fetch now (the caller sends it after the commit)."""
    feed = get_feed(session, feed_id)
    if feed.paused_at is not None:
        raise Conflict("the feed is paused: resume it first")
    audit.record(session, Base.metadata, "feed.poll_requested", "feed", feed.id, {"url": feed.url})
    return feed


def list_feeds(session: Session) -> list[dict]:
    return _with_post_counts(session, list(session.scalars(select(Feed).order_by(Feed.id))))


MAX_FEEDS_PAGE = 100


def feeds_page(session: Session, after_id: int | None = None, limit: int = 25) -> dict:
    """Staff's list a page at a time, by id (``after_id``: the last id of the page before)."""
    if not 1 <= limit <= MAX_FEEDS_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_FEEDS_PAGE}")
    query = select(Feed).order_by(Feed.id).limit(limit + 1)
    if after_id is not None:
        query = query.where(Feed.id > after_id)
    feeds = list(session.scalars(query))
    return {
        "results": _with_post_counts(session, feeds[:limit]),
        "next_after_id": feeds[limit - 1].id if len(feeds) > limit else None,
    }


def _with_post_counts(session: Session, feeds: list[Feed]) -> list[dict]:
    per_feed = select(Post.feed_id, func.count()).where(Post.feed_id.in_([f.id for f in feeds]))
    counts = dict(session.execute(per_feed.group_by(Post.feed_id)).all())
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
        "paused_at": _iso(feed.paused_at),
        "post_count": post_count,
        "city_ids": list(feed.city_ids or []),
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
    least_interval: timedelta | None = None,
) -> None:
    """A 200 that parsed, or a 304: the feed is healthy; its next check follows its rhythm,
    or ``least_interval`` when that is longer (a hub pushes its stories)."""
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
        max(timedelta(seconds=feed.interval_seconds), least_interval or timedelta()),
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
