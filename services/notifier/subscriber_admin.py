"""Staff's work on subscribers (admins only, the gateway checks): find one by address, see
their state and history, resend a pending one's confirmation, unsubscribe them, erase them
on request, and export the list as CSV.

Erasure keeps the counts and loses the person: the subscriber's row stays as a tombstone
(status ``erased``, no address, no cities) so their digests, bounces and the audit log still
count and still point at an id, and the address is taken out of every text that may hold it
(a delivery's error and a bounce's reason quote the server's words, which often name the
recipient; an audit entry or an outbox payload might). Staff's actions are on the audit log
under the actor the task's headers name, never with the address: the log outlives it.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.orm import Session

from services.notifier import subscriptions
from services.notifier.models import (
    Base,
    BounceReport,
    Delivery,
    Subscriber,
    audit_log,
    outbox_events,
)
from shared import audit
from shared.errors import Conflict, InvalidInput, NotFound

MAX_PAGE = 100
MAX_QUERY_CHARS = 254
EXPORT_PAGE = 1000
ERASED = subscriptions.ERASED
ERASED_TEXT = "[erased]"
RECENT_BOUNCES = 20
# OWASP's CSV injection guidance: a spreadsheet reads a cell starting with one of these as a
# formula (tab and carriage return hide one behind whitespace).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = (
    "id",
    "email",
    "status",
    "frequency",
    "cities",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "digests_sent",
    "last_digest_at",
)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def get_subscriber(session: Session, subscriber_id: int, lock: bool = False) -> Subscriber:
    if not isinstance(subscriber_id, int) or not 0 < subscriber_id < 2**31:
        raise NotFound("no subscriber with this id")
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=lock)
    if subscriber is None:
        raise NotFound("no subscriber with this id")
    return subscriber


def summary(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.id,
        "email": None if subscriber.status == ERASED else subscriber.email,
        "status": subscriber.status,
        "frequency": subscriber.frequency,
        "city_count": len(subscriber.city_ids or []),
        "created_at": _when(subscriber.created_at),
        "confirmed_at": _when(subscriber.confirmed_at),
    }


def find(
    session: Session, q: str | None = None, before_id: int | None = None, limit: int = 50
) -> dict[str, Any]:
    """Subscribers whose address starts with ``q`` (any case), newest first, a page at a
    time: ``next_before_id`` asks for the next. The prefix is read through the index on
    ``lower(email)``, so a page costs the same among a hundred or a hundred thousand."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}")
    query = select(Subscriber).order_by(Subscriber.id.desc()).limit(limit + 1)
    if q is not None:
        if not isinstance(q, str) or len(q) > MAX_QUERY_CHARS or not q.isprintable():
            raise InvalidInput(f"q is at most {MAX_QUERY_CHARS} printable characters")
        if q.strip():
            prefix = q.strip().lower()
            query = query.where(func.lower(Subscriber.email).startswith(prefix, autoescape=True))
    if before_id is not None:
        query = query.where(Subscriber.id < before_id)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "results": [summary(row) for row in rows],
        "next_before_id": rows[-1].id if more else None,
    }


def digests_sent(session: Session, subscriber_ids: list[int]) -> dict[int, tuple[int, datetime]]:
    """Per subscriber: how many digests went out, and when the last one did."""
    if not subscriber_ids:
        return {}
    rows = session.execute(
        select(Delivery.subscriber_id, func.count(), func.max(Delivery.sent_at))
        .where(Delivery.subscriber_id.in_(subscriber_ids), Delivery.status == "sent")
        .where(Delivery.campaign_id.is_(None))  # a campaign's mails are not digests
        .group_by(Delivery.subscriber_id)
    ).all()
    return {subscriber_id: (count, last) for subscriber_id, count, last in rows}


def detail(session: Session, subscriber_id: int) -> dict[str, Any]:
    """What staff see of one subscriber: state, preferences, dates, digests and bounces."""
    subscriber = get_subscriber(session, subscriber_id)
    sent, last = digests_sent(session, [subscriber.id]).get(subscriber.id, (0, None))
    by_kind = dict(
        session.execute(
            select(BounceReport.kind, func.count())
            .where(BounceReport.subscriber_id == subscriber.id)
            .group_by(BounceReport.kind)
        ).all()
    )
    recent = session.scalars(
        select(BounceReport)
        .where(BounceReport.subscriber_id == subscriber.id)
        .order_by(BounceReport.received_at.desc(), BounceReport.id.desc())
        .limit(RECENT_BOUNCES)
    )
    city_ids = list(subscriber.city_ids or [])
    names = dict(zip(city_ids, _names_of(session, city_ids), strict=True))
    return {
        **summary(subscriber),
        "cities": [{"id": city_id, "name": names[city_id]} for city_id in city_ids],
        "unsubscribed_at": _when(subscriber.unsubscribed_at),
        "confirmation_sent_at": _when(subscriber.confirmation_sent_at),
        "confirmations": subscriber.confirmations or 0,
        "soft_failures": subscriber.soft_failures or 0,
        "digests_sent": sent,
        "last_digest_at": _when(last),
        "bounces": {
            "hard": by_kind.get("hard", 0),
            "soft": by_kind.get("soft", 0),
            "complaint": by_kind.get("complaint", 0),
        },
        "recent_bounces": [
            {
                "kind": report.kind,
                "message": report.message,
                "reason": report.reason,
                "received_at": _when(report.received_at),
            }
            for report in recent
        ],
    }


def _names_of(session: Session, city_ids: list[int]) -> list[str | None]:
    """Each city's name, or None for one the notifier has not learned yet."""
    known = subscriptions.known_city_names(session, city_ids)
    return [known.get(city_id) for city_id in city_ids]


def resend_confirmation(session: Session, subscriber_id: int, now: datetime):
    """A new confirmation mail for a pending subscriber (the caller sends it after commit):
    a new link, so only it confirms. Staff asked, so the ten-minute budget of the public
    form does not apply, but the mail still goes to the address only."""
    subscriber = get_subscriber(session, subscriber_id)
    if subscriber.status != "pending":
        raise Conflict(f"only a pending subscriber is sent a confirmation ({subscriber.status})")
    subscriber.confirmation_sent_at = now
    subscriber.confirmations = (subscriber.confirmations or 0) + 1
    audit.record(
        session,
        Base.metadata,
        "subscriber.confirmation_resent",
        "subscriber",
        subscriber.id,
        {"confirmations": subscriber.confirmations},
    )
    return subscriptions.LinkMail("confirm", subscriber.id, tuple(subscriber.city_ids or ()))


def unsubscribe(session: Session, subscriber_id: int, now: datetime) -> Subscriber:
    """No more mail to this subscriber; done twice, the second changes nothing."""
    subscriber = get_subscriber(session, subscriber_id)
    if subscriber.status == ERASED:
        raise Conflict("this subscriber was erased")
    if subscriber.status != "unsubscribed":
        audit.record(
            session,
            Base.metadata,
            "subscriber.unsubscribed",
            "subscriber",
            subscriber.id,
            {"status_before": subscriber.status},
        )
        subscriber.status = "unsubscribed"
        subscriber.unsubscribed_at = now
    return subscriber


def erase(session: Session, subscriber_id: int, now: datetime) -> dict[str, Any]:
    """Erase a subscriber on request: the address leaves the notifier's database, the counts
    stay (a tombstone row keeps the id their digests and bounces point at). Safe to run
    twice."""
    # Locked first: whatever records a failure or a bounce locks it too (``ledger``,
    # ``subscriptions.record_bounce``), so each either comes before and is scrubbed here, or
    # after and sees the tombstone.
    subscriber = get_subscriber(session, subscriber_id, lock=True)
    if subscriber.status == ERASED:
        return {"id": subscriber.id, "erased": True}
    address = subscriber.email
    status_before = subscriber.status
    subscriber.email = f"{ERASED}:{subscriber.id}"  # unique, and no address
    subscriber.status = ERASED
    subscriber.city_ids = []
    subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
    subscriber.confirmation_sent_at = None
    scrubbed = _scrub_rows(session, address, subscriber.id)
    audit.record(
        session,
        Base.metadata,
        "subscriber.erased",
        "subscriber",
        subscriber.id,
        {"status_before": status_before, "texts_scrubbed": scrubbed},
    )
    return {"id": subscriber.id, "erased": True}


def _scrub_rows(session: Session, address: str, subscriber_id: int) -> int:
    """Take the address out of every text that may quote it; the number of rows changed."""
    pattern = re.compile(re.escape(address), re.IGNORECASE)
    changed = 0
    for model, column in ((Delivery, Delivery.error), (BounceReport, BounceReport.reason)):
        rows = session.execute(
            select(model.id, column).where(
                model.subscriber_id == subscriber_id, column.is_not(None)
            )
        ).all()
        for row_id, text in rows:
            if pattern.search(text):
                session.execute(
                    update(model)
                    .where(model.id == row_id)
                    .values({column: _scrubbed(pattern, text)})
                )
                changed += 1
    # The audit log and the outbox are read whole: an entry about anything may have quoted it.
    needle = address.lower()
    for table, columns in ((audit_log, ("summary", "actor_name")), (outbox_events, ("payload",))):
        condition = or_(
            *(
                func.lower(cast(table.c[name], Text)).contains(needle, autoescape=True)
                for name in columns
            )
        )
        for row in session.execute(select(table).where(condition)).mappings():
            values = {name: _scrubbed(pattern, row[name]) for name in columns}
            session.execute(update(table).where(table.c.id == row["id"]).values(values))
            changed += 1
    return changed


def _scrubbed(pattern: re.Pattern, value: Any) -> Any:
    """``value`` (text, or JSON of lists and objects) with every match replaced."""
    if isinstance(value, str):
        return pattern.sub(ERASED_TEXT, value)
    if isinstance(value, list):
        return [_scrubbed(pattern, item) for item in value]
    if isinstance(value, dict):
        return {_scrubbed(pattern, key): _scrubbed(pattern, item) for key, item in value.items()}
    return value


# --- CSV export ----------------------------------------------------------------------------


def formula_safe(cell: Any) -> str:
    """A cell a spreadsheet shows as text: one that could start a formula gets a quote."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_lines(rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([formula_safe(cell) for cell in row])
    return out.getvalue()


def export_page(
    session: Session, after_id: int | None = None, limit: int = EXPORT_PAGE
) -> dict[str, Any]:
    """One page of the export (erased subscribers left out), as CSV lines, oldest first, the
    first page with the header; ``next_after_id`` asks for the next, None after the last."""
    if not 1 <= limit <= EXPORT_PAGE:
        raise InvalidInput(f"limit must be from 1 to {EXPORT_PAGE}")
    query = (
        select(Subscriber)
        .where(Subscriber.status != ERASED)
        .order_by(Subscriber.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(Subscriber.id > after_id)
    subscribers = list(session.scalars(query))
    more = len(subscribers) > limit
    subscribers = subscribers[:limit]
    sent = digests_sent(session, [s.id for s in subscribers])
    every_city = sorted({city for s in subscribers for city in (s.city_ids or [])})
    names = subscriptions.known_city_names(session, every_city)
    rows = []
    for s in subscribers:
        count, last = sent.get(s.id, (0, None))
        cities = "; ".join(names.get(city, str(city)) for city in (s.city_ids or []))
        dates = [_when(s.created_at), _when(s.confirmed_at), _when(s.unsubscribed_at)]
        rows.append([s.id, s.email, s.status, s.frequency, cities, *dates, count, _when(last)])
    header = [list(EXPORT_COLUMNS)] if after_id is None else []
    return {
        "csv": _csv_lines(header + rows),
        "next_after_id": subscribers[-1].id if more else None,
    }
