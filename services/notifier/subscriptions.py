"""Subscribers: double opt-in, one-click unsubscribe, preferences behind a signed link.

Subscribing answers the same whatever the address's state, so nobody can learn who
subscribes; the only visible effect is mail to the address itself: a confirmation link for a
new or pending address, a link that adds the cities asked for to a confirmed one. Every
address gets at most one such mail in ten minutes, whatever its state, so the throttle tells
nothing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.notifier import bounces
from services.notifier.models import FREQUENCIES, Base, BounceReport, KnownCity, Subscriber
from services.notifier.tokens import Link, Tokens
from shared import audit
from shared.actor import acting_as, subscriber_actor
from shared.errors import InvalidInput

CONFIRMATION_INTERVAL = timedelta(minutes=10)
LINK_USED = "this link was already used, or a newer one was sent: subscribe again for a new one"
MAX_ADDRESS_CHARS = 254
MAX_CITIES = 50
PENDING_OR_CONFIRMED = ("pending", "confirmed")
# Erased on request (``subscriber_admin.erase``): a tombstone without an address.
ERASED = "erased"
# Temporary failures, in the SMTP conversation or reported later, before mail stops.
SOFT_FAILURE_LIMIT = 5
STOPPED_BY = {bounces.HARD: "bounced", bounces.COMPLAINT: "complained"}


def normalize_address(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("an email address is needed")
    if len(text) > MAX_ADDRESS_CHARS or any(char in text for char in "\r\n\0"):
        raise InvalidInput("this is not a valid email address")
    try:
        # No DNS lookups: a typo'd domain simply never confirms. ASCII only (the domain in
        # its IDNA form), so every mail server can take it and headers need no encoding.
        checked = validate_email(text.strip(), check_deliverability=False, allow_smtputf8=False)
        return checked.ascii_email or checked.normalized
    except EmailNotValidError as error:
        raise InvalidInput(f"this is not a valid email address: {error}") from None


def valid_frequency(frequency: object) -> str:
    if frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}")
    return frequency


def valid_cities(city_ids: object) -> list[int]:
    if city_ids is None:
        return []
    if not isinstance(city_ids, list) or len(city_ids) > MAX_CITIES:
        raise InvalidInput(f"city_ids must be a list of at most {MAX_CITIES} city ids")
    if not all(isinstance(city_id, int) and 0 < city_id < 2**31 for city_id in city_ids):
        raise InvalidInput("city_ids must be positive integers")
    return sorted(set(city_ids))


@dataclass(frozen=True)
class LinkMail:
    """A mail with a signed link to send once the change that asked for it has committed:
    ``confirm`` (a new subscription), ``follow`` (cities a confirmed subscriber asked to add;
    none when what they asked for is already what they get) or ``preferences``."""

    kind: str
    subscriber_id: int
    city_ids: tuple[int, ...] = ()


def subscribe(
    session: Session, email: str, frequency: str, city_ids: list[int] | None, now: datetime
) -> LinkMail | None:
    """Record the wish; return the mail to send, or None when a link went to this address
    less than 10 minutes ago."""
    address = normalize_address(email)
    frequency, cities = valid_frequency(frequency), valid_cities(city_ids)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        subscriber = Subscriber(email=address, status="pending", created_at=now, soft_failures=0)
        session.add(subscriber)
    elif subscriber.status == "confirmed":
        # Nothing changes before its owner follows the link: anyone can type an address.
        if _recently_mailed(subscriber, now):
            return None
        subscriber.confirmation_sent_at = now
        followed = set(subscriber.city_ids)
        # Following every story already covers any city.
        to_add = tuple(c for c in cities if c not in followed) if followed else ()
        return LinkMail("follow", subscriber.id, to_add)
    subscriber.status = "pending"
    subscriber.frequency = frequency
    subscriber.city_ids = cities
    if _recently_mailed(subscriber, now):
        return None
    subscriber.confirmation_sent_at = now
    subscriber.confirmations = (subscriber.confirmations or 0) + 1
    session.flush()
    return LinkMail("confirm", subscriber.id, tuple(cities))


def request_preferences_link(session: Session, email: str, now: datetime) -> LinkMail | None:
    """A lost preferences link, mailed again: only to a confirmed subscriber, at most one
    link mail in 10 minutes. The caller answers the same whatever this returns."""
    address = normalize_address(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None or subscriber.status != "confirmed":
        return None
    if _recently_mailed(subscriber, now):
        return None
    subscriber.confirmation_sent_at = now
    return LinkMail("preferences", subscriber.id)


def _recently_mailed(subscriber: Subscriber, now: datetime) -> bool:
    """``confirmation_sent_at`` holds the last mail with a link sent on request, of any kind:
    one budget per address, so nobody can flood an inbox through our forms."""
    sent = subscriber.confirmation_sent_at
    return sent is not None and now - sent < CONFIRMATION_INTERVAL


def confirmation_token(tokens: Tokens, subscriber: Subscriber) -> str:
    """The link of the confirmation mail about to go: bound to that mail's number."""
    return tokens.make("confirm", subscriber.id, subscriber.email, subscriber.confirmations)


def from_token(session: Session, tokens: Tokens, purpose: str, token: str) -> Subscriber:
    return _subscriber_of(session, tokens, tokens.read(purpose, token))


def _subscriber_of(session: Session, tokens: Tokens, link: Link) -> Subscriber:
    subscriber = session.get(Subscriber, link.subscriber_id)
    if subscriber is None or not tokens.same_address(link.mark, subscriber.email):
        raise InvalidInput("this link is not valid")
    return subscriber


def confirming(session: Session, tokens: Tokens, token: str) -> Subscriber:
    """The subscriber of a confirmation link that still holds: the latest one mailed, for a
    subscriber who is pending or was confirmed by it. An older link, or one followed after
    unsubscribing, does nothing: only a new subscription sends a link that confirms."""
    link = tokens.read("confirm", token)
    subscriber = _subscriber_of(session, tokens, link)
    if link.round != subscriber.confirmations or subscriber.status not in PENDING_OR_CONFIRMED:
        raise InvalidInput(LINK_USED)
    return subscriber


def confirm(session: Session, tokens: Tokens, token: str, now: datetime) -> tuple[Subscriber, bool]:
    """Confirm the subscriber of a confirmation link; whether this use confirmed it (a second
    use of the same link changes nothing)."""
    subscriber = confirming(session, tokens, token)
    if subscriber.status == "confirmed":
        return subscriber, False
    subscriber.status = "confirmed"
    subscriber.confirmed_at = now
    subscriber.weekday = now.weekday()
    subscriber.soft_failures = 0
    _record_own_act(
        session, subscriber, "subscriber.confirmed", {"frequency": subscriber.frequency}
    )
    return subscriber, True


def _record_own_act(session: Session, subscriber: Subscriber, action: str, summary: dict) -> None:
    """What a subscriber did through a signed link, on record as theirs (never the address)."""
    with acting_as(subscriber_actor(subscriber.id)):
        audit.record(session, Base.metadata, action, "subscriber", subscriber.id, summary)


def unsubscribe(session: Session, tokens: Tokens, token: str, now: datetime) -> Subscriber:
    subscriber = from_token(session, tokens, "unsubscribe", token)
    if subscriber.status != "unsubscribed":
        _record_own_act(
            session, subscriber, "subscriber.unsubscribed", {"status_before": subscriber.status}
        )
        subscriber.status = "unsubscribed"
        subscriber.unsubscribed_at = now
    return subscriber


def record_bounce(
    session: Session, tokens: Tokens, bounce_id: str, kind: str, reason: str, now: datetime
) -> Subscriber | None:
    """A bounce or complaint about one message (its return path's id checked again here): a
    hard bounce or a complaint stops mail to the address at once; a soft bounce counts toward
    the limit, once per message. None for an id that is not valid, or a report already had."""
    bounced = tokens.bounce_ids.read(bounce_id)
    if bounced is None or kind not in (bounces.HARD, bounces.SOFT, bounces.COMPLAINT):
        return None
    # Locked, so an erasure under way finishes first (and this records nothing) or scrubs it.
    subscriber = session.get(Subscriber, bounced.subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status == ERASED:
        return None  # a late report about an erased one would bring its address back
    message = f"{bounced.message_kind}:{bounced.message_number}"
    if session.scalar(
        select(BounceReport.id).where(
            BounceReport.subscriber_id == subscriber.id,
            BounceReport.message == message,
            BounceReport.kind == kind,
        )
    ):
        return None
    reason = str(reason)[: bounces.MAX_REASON_CHARS]
    report = {"message": message, "kind": kind, "reason": reason, "received_at": now}
    session.add(BounceReport(subscriber_id=subscriber.id, **report))
    if subscriber.status not in PENDING_OR_CONFIRMED:
        return subscriber  # no mail goes to it anyway
    if kind == bounces.SOFT:
        subscriber.soft_failures = (subscriber.soft_failures or 0) + 1
        if subscriber.soft_failures >= SOFT_FAILURE_LIMIT:
            subscriber.status = "bounced"
    else:
        subscriber.status = STOPPED_BY[kind]
    session.flush()  # two copies of one task: the unique constraint refuses the second
    return subscriber


def follow_link(session: Session, tokens: Tokens, token: str) -> tuple[Subscriber, list[int]]:
    """The subscriber of a follow link and the cities it adds; it works for a confirmed
    subscriber only (an unsubscribed one subscribes again)."""
    link = tokens.read("follow", token)
    subscriber = _subscriber_of(session, tokens, link)
    if subscriber.status != "confirmed" or not link.city_ids:
        raise InvalidInput("this link no longer works: subscribe again from the site")
    return subscriber, link.city_ids


def follow(session: Session, tokens: Tokens, token: str) -> tuple[Subscriber, list[int]]:
    """Add the cities of a follow link; a second use changes nothing."""
    subscriber, city_ids = follow_link(session, tokens, token)
    _add_cities(subscriber, city_ids)
    return subscriber, city_ids


def follow_now(
    session: Session, tokens: Tokens, token: str, email: str, city_ids: list[int] | None
) -> tuple[Subscriber, list[int]] | None:
    """Cities added at once for a browser that opened this subscriber's link lately (the
    site keeps the preferences link's token for a while): only when the address typed is
    the one the link was made for and the subscription is confirmed. None: the caller goes
    the usual way (a mail with a link), which says nothing about the address."""
    try:
        subscriber = from_token(session, tokens, "preferences", token)
        address = normalize_address(email)
    except InvalidInput:
        return None
    cities = valid_cities(city_ids)
    if subscriber.status != "confirmed" or subscriber.email != address or not cities:
        return None
    _add_cities(subscriber, cities)
    return subscriber, cities


def _add_cities(subscriber: Subscriber, city_ids: list[int]) -> None:
    followed = list(subscriber.city_ids)
    if followed:  # following every story already covers these cities
        merged = followed + [city for city in city_ids if city not in followed]
        if len(merged) > MAX_CITIES:
            raise InvalidInput(
                f"at most {MAX_CITIES} cities can be followed: "
                "remove some on your preferences page first"
            )
        subscriber.city_ids = sorted(merged)


def update_preferences(
    session: Session, tokens: Tokens, token: str, frequency: str, city_ids: list[int] | None
) -> Subscriber:
    subscriber = from_token(session, tokens, "preferences", token)
    subscriber.frequency = valid_frequency(frequency)
    subscriber.city_ids = valid_cities(city_ids)
    return subscriber


def unknown_cities(session: Session, city_ids: list[int]) -> list[int]:
    """Followed cities whose names the notifier has not learned yet."""
    known = set(session.scalars(select(KnownCity.city_id).where(KnownCity.city_id.in_(city_ids))))
    return [city_id for city_id in city_ids if city_id not in known]


def city_names(session: Session, city_ids: list[int]) -> list[str]:
    """The names the notifier knows of these cities (a name not learned yet is left out)."""
    names = known_city_names(session, city_ids)
    return [names[city_id] for city_id in city_ids if city_id in names]


def known_city_names(session: Session, city_ids: list[int]) -> dict[int, str]:
    if not city_ids:
        return {}
    return dict(
        session.execute(
            select(KnownCity.city_id, KnownCity.name).where(KnownCity.city_id.in_(city_ids))
        ).all()
    )


def public_view(subscriber: Subscriber) -> dict:
    """What a page reached through a signed link may show: the address it was sent to."""
    return {
        "email": subscriber.email,
        "status": subscriber.status,
        "frequency": subscriber.frequency,
        "city_ids": list(subscriber.city_ids),
    }
