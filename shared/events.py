"""Domain events through a transactional outbox, and their once-only handling by consumers.

A service publishes an event by inserting an outbox row in the same transaction as the change
it announces: the event exists if and only if the change committed. The relay
(``shared.relay``) delivers unsent rows to each consumer's queue after commit. Delivery is at
least once; consumers record the ids of the events they handled in the same transaction as the
handling, so the effect happens exactly once.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
)
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from shared.logs import get_logger
from shared.routing import consumers_of

log = get_logger(__name__)

Envelope = dict[str, Any]
# Applies a run of events of one type, in delivery order, inside the batch's transaction.
Handler = Callable[[Session, list[dict[str, Any]]], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def event_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox and the handled-events ledger, created in every service's own database."""
    outbox = Table(
        "outbox_events",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
    )
    Index(
        "ix_outbox_events_unsent",
        outbox.c.id,
        postgresql_where=outbox.c.sent_at.is_(None),
        sqlite_where=outbox.c.sent_at.is_(None),
    )
    handled = Table(
        "handled_events",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False, index=True),
    )
    return outbox, handled


def outbox_table(metadata: MetaData) -> Table:
    return metadata.tables["outbox_events"]


def handled_table(metadata: MetaData) -> Table:
    return metadata.tables["handled_events"]


def publish(session: Session, metadata: MetaData, event_type: str, payload: dict) -> str:
    """Record an event in the outbox, inside the caller's transaction. Returns the event id."""
    consumers_of(event_type)  # an unknown type is a programming error: fail before commit
    event_id = str(uuid.uuid4())
    session.execute(
        insert(outbox_table(metadata)).values(
            event_id=event_id, event_type=event_type, payload=payload, occurred_at=utcnow()
        )
    )
    session.info["outbox_dirty"] = True
    return event_id


def publish_many(
    session: Session, metadata: MetaData, event_type: str, payloads: list[dict]
) -> list[str]:
    """Record many events of one type in one statement (bulk imports)."""
    consumers_of(event_type)
    now = utcnow()
    rows = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "payload": payload,
            "occurred_at": now,
        }
        for payload in payloads
    ]
    if rows:
        session.execute(insert(outbox_table(metadata)), rows)
        session.info["outbox_dirty"] = True
    return [row["event_id"] for row in rows]


_wake_relay: Callable[[], None] | None = None


def on_outbox_commit(wake: Callable[[], None]) -> None:
    """Call ``wake`` after any commit that published events, so the relay need not poll hard."""
    global _wake_relay
    _wake_relay = wake


def _after_commit(session: Session) -> None:
    if session.info.pop("outbox_dirty", False) and _wake_relay is not None:
        try:
            _wake_relay()
        except Exception as error:  # the relay polls anyway; a lost nudge only adds latency
            log.warning("outbox_wake_failed", error=str(error))


def _after_rollback(session: Session) -> None:
    session.info.pop("outbox_dirty", None)


sa_event.listen(Session, "after_commit", _after_commit)
sa_event.listen(Session, "after_soft_rollback", lambda session, _tx: _after_rollback(session))


def envelope_of(row: Mapping[str, Any], producer: str) -> Envelope:
    return {
        "id": row["event_id"],
        "type": row["event_type"],
        "producer": producer,
        "occurred_at": row["occurred_at"].isoformat(),
        "payload": row["payload"],
    }


def handle_events_once(
    sessions: sessionmaker[Session],
    metadata: MetaData,
    envelopes: list[Envelope],
    handlers: Mapping[str, Handler],
) -> dict[str, int]:
    """Apply a batch of delivered events in one transaction, each at most once. Returns how
    many were ``handled``, ``duplicate`` (handled before, or twice in the batch) and
    ``ignored`` (no handler: recorded, so never looked at again).

    The ledger rows and the handlers' changes commit together: a crash in between leaves
    neither, and the redelivered batch is handled then. Two copies of a batch handled at once
    (a redelivery while the first still runs) claim their ledger rows in the same order, so
    the second waits for the first and then finds every event taken.
    """
    counts = {"handled": 0, "duplicate": 0, "ignored": 0}
    unique = {envelope["id"]: envelope for envelope in envelopes}
    counts["duplicate"] = len(envelopes) - len(unique)
    session = sessions()
    try:
        claimed = _claim_ledger_rows(session, metadata, list(unique.values()))
        fresh = [envelope for envelope in envelopes if claimed.pop(envelope["id"], False)]
        counts["duplicate"] += len(unique) - len(fresh)
        # Consecutive events of one type go to their handler together, in delivery order.
        for event_type, run in itertools.groupby(fresh, key=lambda envelope: envelope["type"]):
            run = list(run)
            handler = handlers.get(event_type)
            if handler is None:
                counts["ignored"] += len(run)
                log.warning("events_ignored", event_type=event_type, count=len(run))
                continue
            handler(session, [envelope["payload"] for envelope in run])
            counts["handled"] += len(run)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if counts["duplicate"]:
        log.info("event_duplicate", count=counts["duplicate"])
    log.info("events_handled", **counts)
    return counts


def _claim_ledger_rows(
    session: Session, metadata: MetaData, envelopes: list[Envelope]
) -> dict[str, bool]:
    """Insert the batch's ledger rows, skipping ids already there; returns the ids this
    transaction inserted. On PostgreSQL an id another transaction inserted and has not
    committed makes this one wait for it, then skips it."""
    if not envelopes:
        return {}
    handled = handled_table(metadata)
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(handled)
    now = utcnow()
    rows = [
        {"event_id": envelope["id"], "event_type": envelope["type"], "handled_at": now}
        for envelope in sorted(envelopes, key=lambda envelope: envelope["id"])
    ]
    inserted = session.execute(
        statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(handled.c.event_id),
        rows,
    )
    return dict.fromkeys(inserted.scalars(), True)
