"""One poll of one feed, as a pipeline of single-purpose parts: fetch → parse → clean → store.

The network is never waited on inside a database transaction, and whatever goes wrong is
written on the feed (and retried later): a poll never raises for a bad feed, and never touches
the posts it already has when the new response is unusable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.blog import feeds, intervals, websub
from services.blog.fetcher import FetchError, fetch
from services.blog.models import Feed, HubSubscription
from services.blog.parser import NotAFeed, parse_feed
from services.blog.post_keys import is_medium_host
from services.blog.posts import post_from_entry, store_posts
from shared.db import session_scope
from shared.events import utcnow
from shared.logs import get_logger

log = get_logger(__name__)

CLAIM_LEASE = timedelta(minutes=10)
STORE_ATTEMPTS = 3


@dataclass
class PollResult:
    feed_id: int
    outcome: str  # stored, not_modified, error, gone
    changed_post_ids: list[int] = field(default_factory=list)
    entries: int = 0
    error: str | None = None
    # WebSub subscriptions to ask their hub about now (websub.request_hub), after the commit
    hub_requests: list[int] = field(default_factory=list)


def poll_feed(
    sessions: sessionmaker[Session],
    feed_id: int,
    *,
    allow_private: bool,
    medium_domains: frozenset[str] = frozenset(),
    now: datetime | None = None,
    read_sessions: sessionmaker[Session] | None = None,
    push_poll_interval: timedelta | None = None,
    **fetch_options,
) -> PollResult:
    """``medium_domains``: the custom domains of Medium publications (``post_keys``).
    ``read_sessions``, when given, serve the opening read (on SQLite they take no lock).
    ``push_poll_interval``: WebSub is on (``websub.py``): the hub a feed names is subscribed
    to, and a feed its hub pushes is polled no more often than this."""
    now = now or utcnow()
    with (read_sessions or sessions)() as session:
        found = session.execute(
            select(Feed.url, Feed.etag, Feed.last_modified).where(Feed.id == feed_id)
        ).first()
    if found is None:
        return PollResult(feed_id, "gone")
    url, etag, last_modified = found
    status = None
    try:
        response = fetch(url, etag, last_modified, allow_private=allow_private, **fetch_options)
        status = response.status
        if response.not_modified:
            return _record(
                sessions,
                feed_id,
                now,
                "not_modified",
                response=response,
                push_poll_interval=push_poll_interval,
            )
        content_type = response.headers.get("content-type")
        parsed = parse_feed(response.body or b"", response.url, content_type)
        # Where the bytes came from (after redirects) decides whether Medium's ids are trusted.
        from_medium = is_medium_host(urlsplit(response.url).hostname, medium_domains)
        posts = [
            post_from_entry(feed_id, url, entry, now, from_medium=from_medium)
            for entry in parsed.entries
        ]
        hub = websub.hub_of(parsed, response.headers, response.url) if push_poll_interval else None
    except FetchError as error:
        return _record(
            sessions,
            feed_id,
            now,
            "error",
            error=error.message,
            status=error.status,
            retry_after=error.retry_after,
        )
    except NotAFeed as error:
        return _record(sessions, feed_id, now, "error", error=error.message, status=status)
    except Exception as error:  # a parser bug on a strange feed must not take the worker down
        log.exception("feed_unreadable", feed_id=feed_id, url=url)
        message = f"the feed could not be read ({error.__class__.__name__})"
        return _record(sessions, feed_id, now, "error", error=message, status=status)

    interval = intervals.interval_from_posts([post.published_at for post in posts], now)
    hub_requests: list[int] = []

    def record(session: Session, feed: Feed) -> None:
        if push_poll_interval is not None:
            hub_requests[:] = websub.note_hub(session, feed_id, hub, from_medium, now)
        feeds.record_success(
            feed,
            now,
            status=200,
            etag=response.etag,
            last_modified=response.last_modified,
            headers=response.headers,
            title=parsed.title,
            site_url=parsed.site_url,
            warning=parsed.warning,
            ttl_minutes=parsed.ttl_minutes,
            interval=interval,
            least_interval=_least_interval(session, feed_id, now, push_poll_interval),
        )

    changed = _store(sessions, feed_id, posts, now, record)
    if changed is None:
        return PollResult(feed_id, "gone")
    return PollResult(feed_id, "stored", changed, len(posts), hub_requests=hub_requests)


def store_delivery(
    sessions: sessionmaker[Session],
    subscription_id: int,
    body: bytes,
    content_type: str | None,
    now: datetime | None = None,
) -> PollResult:
    """A hub's delivery (its signature checked by ``websub.check_delivery``) through the
    rest of a poll's pipeline: parse, sanitize, store once. The feed's validators and rhythm
    are left alone: a delivery may carry only the newest entries."""
    now = now or utcnow()
    with sessions() as session:
        found = session.execute(
            select(
                HubSubscription.feed_id,
                HubSubscription.topic,
                HubSubscription.medium_keys,
                Feed.url,
            )
            .join(Feed, Feed.id == HubSubscription.feed_id)
            .where(HubSubscription.id == subscription_id)
        ).first()
    if found is None:
        return PollResult(0, "gone")
    feed_id, topic, medium_keys, feed_address = found
    try:
        parsed = parse_feed(body, topic, content_type)
        posts = [
            post_from_entry(feed_id, feed_address, entry, now, from_medium=medium_keys)
            for entry in parsed.entries
        ]
    except NotAFeed as error:
        log.info("hub_delivery_unreadable", feed_id=feed_id, error=error.message)
        return PollResult(feed_id, "error", error=error.message)
    except Exception as error:  # as in a poll: a strange delivery must not take the worker down
        log.exception("hub_delivery_unreadable", feed_id=feed_id)
        return PollResult(feed_id, "error", error=error.__class__.__name__)
    changed = _store(sessions, feed_id, posts, now, lambda _session, _feed: None)
    if changed is None:
        return PollResult(feed_id, "gone")
    return PollResult(feed_id, "stored", changed, len(posts))


def _store(sessions, feed_id: int, posts: list, now: datetime, record) -> list[int] | None:
    """Store a feed's posts and ``record(session, feed)`` in one transaction; None when the
    feed is gone."""
    for attempt in range(STORE_ATTEMPTS):
        try:
            with session_scope(sessions) as session:
                relax_durability(session)
                feed = session.get(Feed, feed_id)
                if feed is None:
                    return None
                changed = store_posts(session, feed_id, posts, now)
                record(session, feed)
            return changed
        except IntegrityError:
            # Another worker stored the same story (from another feed) at the same moment;
            # the next attempt sees its row and updates instead.
            if attempt == STORE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _least_interval(
    session: Session, feed_id: int, now: datetime, push_poll_interval: timedelta | None
) -> timedelta | None:
    if push_poll_interval is not None and websub.is_pushed(session, feed_id, now):
        return push_poll_interval
    return None


def relax_durability(session: Session) -> None:
    """On PostgreSQL, commit the poll's posts without waiting for the WAL flush.

    Safe here and nowhere else: the feed's new validators commit in the same transaction, so
    if a database crash loses it, the next poll is answered 200 instead of 304 and stores the
    same posts again. Nothing has been announced yet (that waits for the city links, in a
    transaction of its own). Waiting for the flush is a large share of a poll
    (docs/performance.md)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _record(
    sessions: sessionmaker[Session],
    feed_id: int,
    now: datetime,
    outcome: str,
    *,
    response=None,
    error: str | None = None,
    status: int | None = None,
    retry_after: float | None = None,
    push_poll_interval: timedelta | None = None,
) -> PollResult:
    with session_scope(sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            return PollResult(feed_id, "gone")
        if response is not None:
            feeds.record_success(
                feed,
                now,
                status=304,
                etag=None,
                last_modified=None,
                headers=response.headers,
                least_interval=_least_interval(session, feed_id, now, push_poll_interval),
            )
        else:
            feeds.record_failure(
                feed, now, message=error or "", status=status, retry_after=retry_after
            )
    if error:
        log.info("feed_failed", feed_id=feed_id, error=error, status=status)
    return PollResult(feed_id, outcome, error=error)


def claim_due_feeds(
    session: Session,
    now: datetime,
    limit: int = 1000,
    lease: timedelta = CLAIM_LEASE,
    claimant: str | None = None,
) -> list[int]:
    """Feeds whose next check has come and that no worker holds; held for ``lease`` so the
    next scheduler tick does not hand them out again.

    ``claimant`` (the hand-out's task id) also gets back the feeds it claimed before and that
    are not fetched yet: a hand-out killed between its claim and its last send runs again
    (its message comes back after the visibility timeout) and sends what it had not sent."""
    query = (
        select(Feed.id)
        .where(Feed.next_check_at <= now, Feed.paused_at.is_(None))
        .where(or_(Feed.claimed_until.is_(None), Feed.claimed_until < now))
        .order_by(Feed.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(query))
    if claimant is not None:
        unsent = select(Feed.id).where(Feed.claimed_by == claimant, Feed.claimed_until >= now)
        ids += [
            feed_id for feed_id in session.scalars(unsent.order_by(Feed.id)) if feed_id not in ids
        ]
    if ids:
        session.execute(
            update(Feed)
            .where(Feed.id.in_(ids))
            .values(claimed_until=now + lease, claimed_by=claimant)
        )
    return ids


def all_feed_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Feed.id).order_by(Feed.id)))
