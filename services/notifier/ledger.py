"""The digest ledger: one ``Delivery`` row per (subscriber, period), and the bookkeeping that
makes each digest go out exactly once.

A row is claimed before anything is sent. A message is marked sent in the database just
before its last line (the lone ".") goes to the mail server: the server accepts a message
only on that line, and drops it if the connection dies first. So:

- a worker killed before the mark: the row is still "claimed", the server dropped the half
  message, and the retry sends it: nothing lost, nothing twice;
- a worker killed after the mark: the row says "sent" and the message goes out with the "."
  the kernel already holds;
- two workers holding the same row (a redelivered task): only one mark succeeds (it is
  conditional on "claimed", and the row stays locked until its COMMIT); the other abandons
  its message mid-DATA.

**The window between the mark and the ".".** The mark is an UPDATE in a transaction of its
own; its COMMIT and the "." then go out back to back (``shared.db.commit_in_flight``), and
only then does the worker wait for the database's answer and the server's 250. The point of
no return is the COMMIT leaving the worker, not its answer: from then on the database commits
whether or not the worker lives. Waiting for the answer before writing the "." (the server's
flush to disk and a round trip, the longest step of a message) would leave the row "sent" and
the message unsent for a kill anywhere in that wait. Nothing else sits between the two
writes: the message is built, signed and written up to its last line before the mark. A kill
in what is left (two socket writes apart) loses that one message and never sends anything
twice, and the loss is named: such a row is "sent" without ``accepted_at`` (the server's 250
is recorded with the next mark). The price is the other way round: the database may fail
the COMMIT after the "." went (it crashed at that instant). The worker then makes the mark
again once the database is back (``BatchMarks._record_in_doubt``), so the row is named like
the others; only a database away for longer than ``IN_DOUBT_PATIENCE`` leaves it claimed,
and the retry sends that one message again, with the same Message-ID.

**Rows that remain "sent, not acknowledged"** are staff's to decide (never automatic):
``unconfirmed`` lists them, once they are older than ``SETTLING`` (a batch in flight records
its 250s within seconds), and ``sending.resend_unconfirmed`` sends each again at most once,
with its original Message-ID (receiving mailboxes drop a Message-ID they already hold), its
mark conditional like the first (``BatchMarks.mark_resent``).

Message-IDs are deterministic per (subscriber, period). Sending itself is ``sending.py``'s;
the senders (``senders.py``) call the mark through their ``before_last_line`` step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.notifier import digests
from services.notifier.models import Delivery, Subscriber
from services.notifier.subscriptions import ERASED, SOFT_FAILURE_LIMIT
from shared.db import commit_in_flight, session_scope
from shared.logs import get_logger

log = get_logger(__name__)

STALE_CLAIM = timedelta(minutes=30)
IN_DOUBT_PATIENCE = timedelta(seconds=60)


class AlreadyTaken(Exception):
    """Another worker marked this delivery first."""


CAMPAIGN_PERIOD = "campaign:"
DIGESTS = Delivery.campaign_id.is_(None)


def campaign_period(campaign_id: int) -> str:
    """A campaign's rows share its "period": one row per (campaign, subscriber), held by the
    same unique constraint as a digest's (subscriber, period)."""
    return f"{CAMPAIGN_PERIOD}{campaign_id}"


def message_id(subscriber_id: int, period: str, domain: str) -> str:
    if period.startswith(CAMPAIGN_PERIOD):
        return f"<campaign.{period.removeprefix(CAMPAIGN_PERIOD)}.{subscriber_id}@{domain}>"
    return f"<digest.{period.replace(':', '.')}.{subscriber_id}@{domain}>"


def claim(
    session: Session,
    subscriber_ids: list[int],
    period: str,
    now: datetime,
    domain: str,
    claimant: str | None = None,
    campaign_id: int | None = None,
) -> list[int]:
    """Ledger rows for these subscribers in this period (existing rows are left as they are);
    returns the ids of the rows still to be sent."""
    if subscriber_ids:
        rows = [
            {
                "subscriber_id": subscriber_id,
                "period": period,
                "status": "claimed",
                "message_id": message_id(subscriber_id, period, domain),
                "stories": 0,
                "attempts": 0,
                "created_at": now,
                "claimed_by": claimant,
                "campaign_id": campaign_id,
            }
            for subscriber_id in subscriber_ids
        ]
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(Delivery).on_conflict_do_nothing(), rows)
    return list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.period == period, Delivery.status == "claimed")
            .where(Delivery.subscriber_id.in_(subscriber_ids))
            .order_by(Delivery.id)
        )
    )


def claims_of(session: Session, claimant: str) -> list[int]:
    """Rows this hand-out claimed that are still claimed: a hand-out killed between claiming
    and its last send runs again (its message comes back) and sends them, instead of leaving
    them for ``stale_claims``. A row also in a batch already out is sent once all the same:
    the mark before each message's last line takes only a row still claimed."""
    query = select(Delivery.id).where(Delivery.status == "claimed", Delivery.claimed_by == claimant)
    return list(session.scalars(query.order_by(Delivery.id)))


def stale_claims(session: Session, now: datetime) -> list[int]:
    """Claimed digest rows no task finished: their task was lost or gave up retrying (a
    campaign's are its own hand-out's, ``hand_out_campaign``)."""
    query = select(Delivery.id).where(
        Delivery.status == "claimed", Delivery.created_at < now - STALE_CLAIM, DIGESTS
    )
    return list(session.scalars(query.order_by(Delivery.id)))


@dataclass
class HandedOut:
    batches: int = 0
    deliveries: int = 0


def hand_out(
    sessions: sessionmaker[Session],
    read_sessions: sessionmaker[Session],
    frequencies: list[str],
    now: datetime,
    *,
    batch: int,
    domain: str,
    claimant: str,
    every: bool,
    send: Callable[[list[int]], None],
) -> HandedOut:
    """Claim the due subscribers' rows and hand them to ``send`` in batches: first the rows
    this hand-out (``claimant``) claimed in an earlier run that was killed, then stale claims,
    then each frequency's due subscribers (``every``: all its confirmed ones, staff's "send
    now"). Each batch goes out as soon as it is claimed: sending starts while claiming goes
    on."""
    handed_out = HandedOut()
    in_batches = _batches(handed_out, batch, send)
    with read_sessions() as session:
        again = claims_of(session, claimant)
        stale = sorted(set(stale_claims(session, now)) - set(again))
    in_batches(again)
    in_batches(stale)
    for frequency in frequencies:
        period = digests.period_of(frequency, now)
        with read_sessions() as session:
            due = digests.due_subscribers(session, frequency, now, every=every)
        for start in range(0, len(due), batch):
            with session_scope(sessions) as session:
                claimed = claim(session, due[start : start + batch], period, now, domain, claimant)
            in_batches(claimed)
    return handed_out


def _batches(handed_out: HandedOut, batch: int, send: Callable[[list[int]], None]):
    def in_batches(delivery_ids: list[int]) -> None:
        for start in range(0, len(delivery_ids), batch):
            if chunk := delivery_ids[start : start + batch]:
                send(chunk)
                handed_out.batches += 1
                handed_out.deliveries += len(chunk)

    return in_batches


def hand_out_campaign(
    sessions: sessionmaker[Session],
    campaign_id: int,
    audience: list[int],
    now: datetime,
    *,
    batch: int,
    domain: str,
    send: Callable[[list[int]], None],
) -> HandedOut:
    """A campaign's rows, as ``hand_out`` does a period's: first its rows still claimed (a
    hand-out or a batch killed before it finished: they come back whenever the campaign is
    handed out again), then the audience's, claimed and handed out a batch at a time."""
    handed_out = HandedOut()
    in_batches = _batches(handed_out, batch, send)
    period = campaign_period(campaign_id)
    with session_scope(sessions) as session:
        again = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.period == period, Delivery.status == "claimed")
                .order_by(Delivery.id)
            )
        )
    in_batches(again)
    known = set(again)
    for start in range(0, len(audience), batch):
        with session_scope(sessions) as session:
            chunk = audience[start : start + batch]
            claimed = claim(session, chunk, period, now, domain, campaign_id=campaign_id)
        in_batches([delivery_id for delivery_id in claimed if delivery_id not in known])
    return handed_out


SETTLING = timedelta(minutes=5)

_NOW = bindparam("now", type_=Delivery.sent_at.type)
_MARK_ACCEPTED = (
    update(Delivery)
    .where(Delivery.id.in_(bindparam("accepted", expanding=True)))
    .values(accepted_at=_NOW)
)


def _mark_statement(still_to_send, **changes):
    """One statement, so one round trip a message: this row marked (only while
    ``still_to_send`` holds) and the previous message's 250 recorded. It returns the ids it
    changed."""
    mine, previous = Delivery.id == bindparam("delivery"), Delivery.id == bindparam("previous")
    return (
        update(Delivery)
        .where(or_(and_(mine, still_to_send), previous))
        .values(
            **{
                column: case((mine, value), else_=getattr(Delivery, column))
                for column, value in changes.items()
            },
            attempts=case((mine, Delivery.attempts + 1), else_=Delivery.attempts),
            accepted_at=case((previous, _NOW), else_=Delivery.accepted_at),
        )
        .returning(Delivery.id)
    )


_MARK_SENT = _mark_statement(
    Delivery.status == "claimed", status="sent", sent_at=_NOW, stories=bindparam("stories")
)
UNCONFIRMED = and_(
    Delivery.status == "sent", Delivery.accepted_at.is_(None), Delivery.resent_at.is_(None)
)
_MARK_RESENT = _mark_statement(UNCONFIRMED, resent_at=_NOW)


class BatchMarks:
    """The ledger writes of one batch of digests: one connection for the batch (checking a
    pooled connection out and pinging it for every row would cost more than the mark), each
    write its own transaction.

    The server's 250 for a message is recorded with the next mark; whatever ends the batch,
    even an error (a deadlock between two copies of a redelivered batch, a lost database),
    the 250s already heard are recorded on the way out: they are facts to keep."""

    def __init__(self, engine: Engine, now: datetime):
        self.engine = engine
        self.now = now
        self._accepted: list[int] = []  # heard 250, not yet recorded: one at most after a mark
        self._in_flight: Callable[[], None] | None = None
        self._marking: tuple | None = None  # the mark whose COMMIT is in flight
        self._in_doubt: tuple | None = None  # a mark whose COMMIT failed after the last line

    def __enter__(self) -> BatchMarks:
        self._ledger = self.engine.connect()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._in_flight is not None:  # a sender that never called back: answered here
                self._marked()
        except SQLAlchemyError:
            pass  # the database is lost: recorded below once it is back
        try:
            if self._in_doubt is not None:
                self._record_in_doubt()
            if self._accepted:
                self._record_accepted()
        finally:
            self._ledger.close()

    def mark_sent(self, delivery_id: int, stories: int) -> Callable[[], None]:
        """The mark, run just before the message's last line; it returns once its COMMIT has
        left, and the sender calls what it returns once the last line has (it waits for the
        COMMIT's answer). The previous message's 250 rides along: a row marked sent but never
        accepted is one a crash may have lost (at most one per connection), and it is named.
        Raises ``AlreadyTaken`` when another worker marked the row first."""
        return self._mark(_MARK_SENT, delivery_id, stories=stories)

    def mark_resent(self, delivery_id: int) -> Callable[[], None]:
        """The mark of staff's re-send of a row sent and never acknowledged, as ``mark_sent``:
        each such row is re-sent once, whoever else presses at the same time."""
        return self._mark(_MARK_RESENT, delivery_id)

    def _mark(self, statement, delivery_id: int, **values) -> Callable[[], None]:
        previous = self._accepted[-1] if self._accepted else None
        params = {"delivery": delivery_id, "previous": previous, "now": self.now, **values}
        changed = self._ledger.execute(statement, params).scalars().all()
        if delivery_id not in changed:
            self._ledger.commit()  # the previous 250 is kept all the same
            self._accepted.clear()
            raise AlreadyTaken(delivery_id)
        self._marking = (statement, params)
        # Nothing may follow between the COMMIT and the sender's last line (see above).
        self._in_flight = commit_in_flight(self._ledger)
        return self._marked

    def _marked(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        try:
            in_flight()
        except SQLAlchemyError:
            # The last line has gone and the COMMIT's fate is unknown (the database crashed
            # or refused it): if the mark is lost, the row is still claimed and a retry would
            # send the message again. Marked again on the way out, once the database is back.
            self._in_doubt = self._marking
            raise
        self._accepted.clear()

    def accepted(self, delivery_id: int) -> None:
        """The server said 250 for this row's message."""
        self._accepted.append(delivery_id)

    def finish(self, delivery_id: int, status: str) -> None:
        """A row with nothing to send ("empty") or no one to send it to ("skipped")."""
        self._ledger.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "claimed")
            .values(status=status, sent_at=self.now)
        )
        self._ledger.commit()

    def _record_in_doubt(self) -> None:
        """The mark whose COMMIT failed after the last line, made again (it is conditional:
        a mark that did commit changes nothing). The message was most likely accepted; its
        row ends "sent" without ``accepted_at``, named like any other such row. The database
        is waited for up to ``IN_DOUBT_PATIENCE`` (the length of a restart, not of an
        outage): a row still unmarked then is claimed, and its retry sends it again, with
        the same Message-ID."""
        statement, params = self._in_doubt
        deadline = time.monotonic() + IN_DOUBT_PATIENCE.total_seconds()
        wait = 0.25
        while True:
            try:
                if self._ledger.in_transaction() or self._ledger.invalidated:
                    self._ledger.rollback()
                self._ledger.execute(statement, {**params, "previous": None})
                self._ledger.commit()
                self._in_doubt = None
                log.warning("mark_in_doubt_made_again", delivery=params["delivery"])
                return
            except SQLAlchemyError as error:
                if time.monotonic() + wait > deadline:
                    log.error(
                        "mark_in_doubt_not_recorded", delivery=params["delivery"], error=str(error)
                    )
                    return
            time.sleep(wait)
            wait = min(wait * 2, 5.0)

    def _record_accepted(self) -> None:
        try:
            if self._ledger.in_transaction():
                self._ledger.rollback()  # after a failed statement the connection wants it first
            self._ledger.execute(_MARK_ACCEPTED, {"accepted": self._accepted, "now": self.now})
            self._ledger.commit()
        except SQLAlchemyError as error:
            log.warning("accepted_not_recorded", deliveries=len(self._accepted), error=str(error))


@dataclass(frozen=True)
class Unconfirmed:
    """A digest marked sent whose 250 was never recorded."""

    delivery_id: int
    subscriber_id: int
    period: str
    message_id: str
    sent_at: datetime


def unconfirmed(session: Session, now: datetime, period: str | None = None) -> list[Unconfirmed]:
    """Digests marked sent, never acknowledged and not re-sent yet, by period: those a crash
    at the last line may have lost. Marked within ``SETTLING`` of ``now``, a row is more
    likely a batch still under way (its 250 is recorded with its next mark) and is left out."""
    query = select(
        Delivery.id, Delivery.subscriber_id, Delivery.period, Delivery.message_id, Delivery.sent_at
    ).where(UNCONFIRMED, DIGESTS, Delivery.sent_at < now - SETTLING)
    if period is not None:
        query = query.where(Delivery.period == period)
    rows = session.execute(query.order_by(Delivery.period, Delivery.id))
    return [Unconfirmed(*row) for row in rows]


def undo_resend(sessions: sessionmaker[Session], delivery_id: int, error: str) -> None:
    """The server refused a re-sent message for now (a 4xx after its mark): staff may try
    again."""
    with session_scope(sessions) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.accepted_at.is_(None))
            .values(resent_at=None, error=error[:1000])
        )


def record_failure(
    sessions: sessionmaker[Session],
    delivery_id: int,
    subscriber_id: int,
    error: str,
    permanent: bool,
) -> None:
    """Undo the mark (the server refused the message after all) and count the failure against
    the subscriber: a permanent one bounces the address, temporary ones up to a limit."""
    with session_scope(sessions) as session:
        # Locked: an erasure (``subscriber_admin.erase``) either saw this error and scrubbed
        # it, or comes first and this writes none (the server's words often quote the address).
        subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
        delivery = session.get(Delivery, delivery_id)
        if subscriber.status == ERASED:
            delivery.status = "failed"
            return
        delivery.error = error[:1000]
        if permanent:
            delivery.status = "failed"
            subscriber.status = "bounced"
            return
        delivery.status = "claimed"
        subscriber.soft_failures += 1
        if subscriber.soft_failures >= SOFT_FAILURE_LIMIT:
            subscriber.status = "bounced"
            delivery.status = "failed"
