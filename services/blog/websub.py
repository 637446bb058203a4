"""WebSub (W3C Recommendation, 2018): a feed's hub pushes its new stories in seconds, where a
poll finds them minutes to hours late.

A feed that names a hub (``<link rel="hub">`` in the feed, or an HTTP ``Link`` header) gets a
subscription of its own: a callback on the gateway at ``/websub/<token>`` (32 random bytes, so
nobody finds it by guessing), a secret of its own that signs every delivery, the topic (the
feed's ``rel="self"`` address, else the address it was fetched from). Its life:

- ``requested``: the hub took ``hub.mode=subscribe`` and will check our intent with a GET on
  the callback. We echo ``hub.challenge`` only for a subscription we asked for, with the same
  mode and topic, and record the lease the hub grants: ``active``.
- ``active``: deliveries are taken; the periodic job asks again before the lease ends
  (``RENEW_BEFORE``). The feed is still polled, at ``WEBSUB_POLL_INTERVAL``, in case a push
  never comes.
- ``failed``: the hub refused, could not be reached, never checked our intent, denied it, or
  the lease ran out. Polling is back in charge at once (the feed is polled now and at its own
  rhythm), and the hub is asked again later, backing off.
- ``unsubscribing``: the feed was removed (or names another hub): the hub is asked to stop, and
  the row goes when it checks that intent too.

Deliveries. The gateway holds no secrets and no database, so it hands each POST (capped at
``MAX_DELIVERY_BYTES``) to ``blog.receive_delivery`` and waits for the answer, which checks the
``X-Hub-Signature`` HMAC (sha1, sha256, sha384 or sha512 of the body, with the subscription's
secret) and queues the story for the same pipeline as a poll (``blog.store_delivery``: parse,
sanitize, store once, link cities, announce). Why the gateway waits for that check rather than
answering 2xx at once and checking later, as the spec allows: a callback path that names no
subscription is answered 404 and never queued, so a stranger cannot fill Redis and the blog's
queue with megabyte bodies or make the blog parse them; a removed subscription is answered
410, which tells the hub to stop; a missing or wrong signature is refused with 403 (the spec's
"ignore it", said out loud: a real hub sending it holds a secret we no longer know, and the
secrets are 256 bits, so the answer helps no guessing); and a blog that is down is a 503, which
the hub retries, so no delivery is acknowledged and then lost. The check is one HMAC and one
indexed read, well within the gateway's SERVICE_TIMEOUT; the parsing happens after the answer,
as the spec asks. A delivery sent twice stores nothing twice: posts are keyed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from requests.utils import parse_header_links
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.blog.fetcher import FetchError, post_form
from services.blog.models import Feed, HubSubscription
from services.blog.parser import ParsedFeed
from shared.errors import ServiceError
from shared.logs import get_logger

log = get_logger(__name__)

CALLBACK_PATH = "/websub/"
# secrets.token_urlsafe(32): the gateway refuses any other shape without asking.
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
# What we ask for; the hub decides, and what it grants is kept within these bounds.
REQUESTED_LEASE = timedelta(days=10)
MIN_LEASE, MAX_LEASE = timedelta(minutes=1), timedelta(days=365)
# Renewal starts when a fifth of the lease is left (two days of ten), at least a minute.
RENEW_FRACTION = 0.2
# A hub that took the request but never checked our intent within this long has failed.
VERIFY_WAIT = timedelta(minutes=10)
FIRST_BACKOFF, MAX_BACKOFF = timedelta(minutes=15), timedelta(hours=24)
# An unsubscription the hub never confirms is dropped after this many requests.
UNSUBSCRIBE_ATTEMPTS = 5
MAX_DELIVERY_BYTES = 1024 * 1024
SIGNATURE_METHODS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
LIVE = ("requested", "active", "failed")


@dataclass(frozen=True)
class Hub:
    url: str
    topic: str


def hub_of(parsed: ParsedFeed, headers: Mapping[str, str], fetched_url: str) -> Hub | None:
    """The hub a fetched feed names, HTTP ``Link`` headers first (as the spec orders)."""
    links = {}
    for name, value in headers.items():
        if name.lower() == "link":
            for link in parse_header_links(value[:4000]):
                links.setdefault(str(link.get("rel", "")).lower(), link.get("url", ""))
    hub = links.get("hub") or parsed.hub_url
    topic = links.get("self") or parsed.self_url or fetched_url
    if not (hub and _http(hub) and _http(topic)):
        return None
    return Hub(hub[:2000], topic[:2000])


def _http(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) <= 2000


def note_hub(
    session: Session, feed_id: int, hub: Hub | None, medium_keys: bool, now: datetime
) -> list[int]:
    """What a poll saw, applied to the feed's subscriptions: a new hub (or topic) gets a new
    subscription, one the feed no longer names is ended. Returns the ids to send a request
    for (``request``), after the commit."""
    rows = session.scalars(
        select(HubSubscription).where(
            HubSubscription.feed_id == feed_id, HubSubscription.state.in_(LIVE)
        )
    ).all()
    waiting = []
    for row in rows:
        if hub is None or (row.hub_url, row.topic) != (hub.url, hub.topic):
            _end(row, now)
            waiting.append(row.id)
    if hub is None or any((row.hub_url, row.topic) == (hub.url, hub.topic) for row in rows):
        return waiting
    row = HubSubscription(
        feed_id=feed_id,
        callback_token=secrets.token_urlsafe(32),
        secret=secrets.token_urlsafe(32),
        hub_url=hub.url,
        topic=hub.topic,
        medium_keys=medium_keys,
        state="requested",
        requested_at=now,
        next_attempt_at=now + VERIFY_WAIT,
        failures=0,
    )
    session.add(row)
    session.flush()
    return [*waiting, row.id]


def end_subscriptions(session: Session, feed_id: int, now: datetime) -> list[int]:
    """The feed is going: each of its subscriptions is to be cancelled at its hub."""
    rows = session.scalars(
        select(HubSubscription).where(
            HubSubscription.feed_id == feed_id, HubSubscription.state.in_(LIVE)
        )
    ).all()
    for row in rows:
        _end(row, now)
    return [row.id for row in rows]


def _end(row: HubSubscription, now: datetime) -> None:
    row.state = "unsubscribing"
    row.feed_id = None
    row.failures = 0
    row.next_attempt_at = now  # the periodic job asks the hub, if no task did first


def is_pushed(session: Session, feed_id: int, now: datetime) -> bool:
    """Whether a hub pushes this feed's stories now (so polling may relax)."""
    return (
        session.scalar(
            select(HubSubscription.id).where(
                HubSubscription.feed_id == feed_id,
                HubSubscription.state == "active",
                HubSubscription.expires_at > now,
            )
        )
        is not None
    )


@dataclass(frozen=True)
class HubRequest:
    subscription_id: int
    hub_url: str
    fields: dict[str, str]


def hub_request(session: Session, subscription_id: int, base_url: str) -> HubRequest | None:
    """What to send the hub for this subscription now (subscribe, renew or unsubscribe)."""
    row = session.get(HubSubscription, subscription_id)
    if row is None:
        return None
    mode = "unsubscribe" if row.state == "unsubscribing" else "subscribe"
    fields = {
        "hub.mode": mode,
        "hub.topic": row.topic,
        "hub.callback": f"{base_url}{CALLBACK_PATH}{row.callback_token}",
    }
    if mode == "subscribe":
        fields["hub.secret"] = row.secret
        fields["hub.lease_seconds"] = str(int(REQUESTED_LEASE.total_seconds()))
    return HubRequest(row.id, row.hub_url, fields)


def send_hub_request(request: HubRequest, allow_private: bool) -> str | None:
    """POST the request to the hub (outside any transaction); None when it took it (2xx),
    else why not."""
    try:
        status, answer = post_form(request.hub_url, request.fields, allow_private=allow_private)
    except FetchError as error:
        return error.message
    if 200 <= status < 300:
        return None
    said = " ".join(answer.split())[:200]
    return f"the hub answered {status}" + (f": {said}" if said else "")


def record_request(
    session: Session, subscription_id: int, mode: str, problem: str | None, now: datetime
) -> None:
    """The hub's answer to our request. Taken: its check of intent is awaited (an active
    subscription stays active meanwhile). Refused or unreachable: a subscription fails and
    polling takes over; an unsubscription is asked again, then dropped."""
    row = session.get(HubSubscription, subscription_id)
    if row is None or (mode == "unsubscribe") != (row.state == "unsubscribing"):
        return  # it changed state while we asked
    if problem is None:
        # Its check of intent may already have come (and set the renewal time): the wait for
        # it was set before the request went.
        row.requested_at = now
        return
    log.info("hub_request_failed", subscription=row.id, mode=mode, error=problem)
    row.last_error = problem[:1000]
    if mode == "unsubscribe":
        row.next_attempt_at = now + _backoff(row.failures)  # counted by due_work
        return
    row.failures += 1
    _fail(session, row, problem, now)


def _fail(session: Session, row: HubSubscription, problem: str, now: datetime) -> None:
    was_active = row.state == "active"
    row.state = "failed"
    row.last_error = problem[:1000]
    row.next_attempt_at = now + _backoff(max(row.failures, 1))
    if was_active and row.feed_id is not None:
        # Pushes may have stopped some time ago: poll now, then at the feed's own rhythm.
        feed = session.get(Feed, row.feed_id)
        if feed is not None:
            feed.next_check_at = min(feed.next_check_at, now)


def _backoff(failures: int) -> timedelta:
    return min(FIRST_BACKOFF * 2 ** min(failures - 1, 16), MAX_BACKOFF)


def verify_intent(
    session: Session,
    token: str,
    mode: str,
    topic: str,
    challenge: str,
    lease_seconds: str | None,
    reason: str | None,
    now: datetime,
) -> str | None:
    """The hub's GET on a callback. Returns what to answer with 200 (the challenge, or nothing
    for a denial), or None for 404: no such subscription, not in a state that asked for this
    mode, or another topic."""
    row = session.scalar(select(HubSubscription).where(HubSubscription.callback_token == token))
    if row is None or topic != row.topic:
        return None
    if mode == "subscribe" and row.state in ("requested", "active") and challenge:
        lease = _lease(lease_seconds)
        row.state = "active"
        row.lease_seconds = int(lease.total_seconds())
        row.expires_at = now + lease
        row.next_attempt_at = row.expires_at - max(lease * RENEW_FRACTION, MIN_LEASE)
        row.failures = 0
        row.last_error = None
        log.info("hub_subscription_verified", subscription=row.id, lease=row.lease_seconds)
        return challenge
    if mode == "unsubscribe" and row.state == "unsubscribing" and challenge:
        session.delete(row)
        log.info("hub_unsubscription_verified", subscription=row.id)
        return challenge
    if mode == "denied" and row.state in ("requested", "active"):
        row.failures += 1
        _fail(session, row, f"the hub denied the subscription: {(reason or '')[:300]}", now)
        return ""
    return None


def _lease(raw: str | None) -> timedelta:
    try:
        seconds = int(str(raw).strip())
    except (TypeError, ValueError):
        return REQUESTED_LEASE  # the spec requires it; a hub that leaves it out gets ours
    return min(max(timedelta(seconds=seconds), MIN_LEASE), MAX_LEASE)


def check_delivery(
    session: Session, token: str, body: bytes, signature: str | None, now: datetime
) -> HubSubscription:
    """The subscription a delivery is for, when its signature is right; a ``ServiceError`` with the
    status the hub gets otherwise (404, 410, 403)."""
    row = session.scalar(select(HubSubscription).where(HubSubscription.callback_token == token))
    if row is None:
        raise ServiceError("not_found", "no subscription at this callback")
    if row.state == "unsubscribing" or row.feed_id is None:
        raise ServiceError("gone", "this subscription has ended")
    if not signature_matches(row.secret, body, signature):
        log.warning("hub_delivery_refused", subscription=row.id, signed=bool(signature))
        raise ServiceError("forbidden", "the delivery's X-Hub-Signature is missing or wrong")
    row.last_delivery_at = now
    return row


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    method, _, given = (header or "").strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if digest is None or not given:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def due_work(session: Session, now: datetime) -> list[int]:
    """The periodic job's share: leases run out (failed, polling back in charge), checks of
    intent that never came (failed), and the ids to ask the hub about again: renewals,
    subscriptions that failed and whose backoff is over, unconfirmed unsubscriptions."""
    due = session.scalars(
        select(HubSubscription)
        .where(HubSubscription.next_attempt_at <= now)
        .order_by(HubSubscription.next_attempt_at)
        .limit(500)
    ).all()
    ask = []
    for row in due:
        if row.state == "active" and row.expires_at is not None and row.expires_at <= now:
            row.failures += 1
            _fail(session, row, "the lease ran out before the hub confirmed a renewal", now)
        elif row.state == "requested":
            row.failures += 1
            _fail(session, row, "the hub never checked our intent", now)
        elif row.state == "unsubscribing" and row.failures >= UNSUBSCRIBE_ATTEMPTS:
            session.delete(row)  # the hub never confirmed; its deliveries now get 404
        else:
            if row.state == "failed":
                row.state = "requested"
            elif row.state == "unsubscribing":
                row.failures += 1
            row.next_attempt_at = now + VERIFY_WAIT
            ask.append(row.id)
    return ask
