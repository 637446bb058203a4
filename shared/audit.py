"""Every change on record: each service keeps an ``audit_log`` table in its own database.

A service records an entry in the same transaction as the change it describes (as it
publishes events through the outbox), so an entry exists exactly when its change committed.
The entry names the actor (``shared.actor``: who asked, carried in the task's headers), the
action, the object (kind and id), a JSON summary of the change (before and after for an
edit), the moment and the request id. Its subjects (``audit_subjects``) are the object and
the others the change concerns (a partnership's two cities), so that one object's history
holds every change that touched it. Each service answers for its own entries
(``<service>.list_audit_entries``, registered by ``shared.runtime``); ``merge_pages`` makes
one history of several services' answers, newest first, paginated by a cursor that every
service can read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    insert,
    or_,
)
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session

from shared.actor import SYSTEM, current_actor
from shared.db import UTCDateTime
from shared.errors import InvalidInput

TABLE = "audit_log"
SUBJECTS = "audit_subjects"
KIND = re.compile(r"[a-z_]{1,30}\Z")  # \Z: marshmallow's Regexp matches from the start only
MAX_PAGE = 200
KIND_CHARS = 30
OBJECT_ID_CHARS = 64

Entry = dict[str, Any]


def audit_table(metadata: MetaData) -> Table:
    """The audit log and its subjects, created in every service's own database."""
    table = Table(
        TABLE,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("occurred_at", UTCDateTime, nullable=False),
        Column("actor_id", String(80), nullable=False),
        Column("actor_name", String(300), nullable=False),
        Column("action", String(60), nullable=False),
        Column("object_kind", String(KIND_CHARS), nullable=False),
        Column("object_id", String(OBJECT_ID_CHARS), nullable=False),
        Column("summary", JSON, nullable=False),
        Column("request_id", String(64), nullable=True),
    )
    # The whole log, newest first; one object's history goes through its subjects.
    Index("ix_audit_log_occurred", table.c.occurred_at, table.c.id)
    Table(
        SUBJECTS,
        metadata,
        Column("object_kind", String(KIND_CHARS), nullable=False),
        Column("object_id", String(OBJECT_ID_CHARS), nullable=False),
        Column("entry_id", Integer, ForeignKey(f"{TABLE}.id", ondelete="CASCADE"), nullable=False),
        PrimaryKeyConstraint("object_kind", "object_id", "entry_id"),
    )
    return table


def record(
    session: Session,
    metadata: MetaData,
    action: str,
    kind: str,
    object_id: int | str,
    summary: Mapping[str, Any] | None = None,
    related: Iterable[tuple[str, int | str]] = (),
) -> None:
    """Record one change inside the caller's transaction, naming the current actor.
    ``related``: other objects (kind, id) whose history the change belongs to as well."""
    actor = current_actor() or SYSTEM
    entry_id = session.execute(
        insert(metadata.tables[TABLE])
        .values(
            occurred_at=datetime.now(UTC),
            actor_id=actor["id"],
            actor_name=actor["name"],
            action=action,
            object_kind=kind,
            object_id=str(object_id),
            summary=dict(summary or {}),
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
        )
        .returning(metadata.tables[TABLE].c.id)
    ).scalar_one()
    subjects = {(kind, str(object_id))} | {(k, str(i)) for k, i in related}
    session.execute(
        insert(metadata.tables[SUBJECTS]),
        [{"object_kind": k, "object_id": i, "entry_id": entry_id} for k, i in sorted(subjects)],
    )


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What an edit changed: ``{"field": {"before": old, "after": new}}`` for each field of
    ``after`` whose value differs."""
    return {
        field: {"before": before.get(field), "after": value}
        for field, value in after.items()
        if before.get(field) != value
    }


def list_entries(
    session: Session,
    metadata: MetaData,
    service: str,
    kind: str | None = None,
    object_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """One service's entries, newest first, after ``cursor`` (in the merged order of every
    service), at most ``limit`` + 1: the extra one tells the merge there is more."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}")
    if object_id is not None and kind is None:
        raise InvalidInput("an object id needs its kind")
    if kind is not None and not KIND.fullmatch(kind):
        raise InvalidInput("kind is a word of lower-case letters, such as partnership")
    if object_id is not None and not (
        0 < len(object_id) <= OBJECT_ID_CHARS and object_id.isprintable()
    ):
        raise InvalidInput(f"an object id is 1 to {OBJECT_ID_CHARS} printable characters")
    table = metadata.tables[TABLE]
    query = sql_select(table).order_by(table.c.occurred_at.desc(), table.c.id.desc())
    if kind is not None:
        subjects = metadata.tables[SUBJECTS]
        about = sql_select(subjects.c.entry_id).where(subjects.c.object_kind == kind)
        if object_id is not None:
            about = about.where(subjects.c.object_id == str(object_id))
        query = query.where(table.c.id.in_(about))
    if cursor is not None:
        moment, cursor_service, cursor_id = decode_cursor(cursor)
        # Entries sort by (moment, service, id), descending: those after the cursor here.
        if service < cursor_service:
            query = query.where(table.c.occurred_at <= moment)
        elif service == cursor_service:
            query = query.where(
                or_(
                    table.c.occurred_at < moment,
                    and_(table.c.occurred_at == moment, table.c.id < cursor_id),
                )
            )
        else:
            query = query.where(table.c.occurred_at < moment)
    rows = session.execute(query.limit(limit + 1)).mappings()
    return {"results": [_entry(service, row) for row in rows]}


def _entry(service: str, row: Mapping[str, Any]) -> Entry:
    return {
        "service": service,
        "id": row["id"],
        "occurred_at": row["occurred_at"].isoformat(),
        "actor": {"id": row["actor_id"], "name": row["actor_name"]},
        "action": row["action"],
        "object": {"kind": row["object_kind"], "id": row["object_id"]},
        "summary": row["summary"],
        "request_id": row["request_id"],
    }


def _order(entry: Entry) -> tuple[datetime, str, int]:
    return datetime.fromisoformat(entry["occurred_at"]), entry["service"], entry["id"]


def merge_pages(pages: Iterable[list[Entry]], limit: int) -> dict[str, Any]:
    """One history of several services' pages (each from ``list_entries`` with the same
    cursor and limit), newest first, and the cursor of the next page if there is one."""
    merged = sorted((entry for page in pages for entry in page), key=_order, reverse=True)
    results = merged[:limit]
    more = len(merged) > limit
    return {"results": results, "next_cursor": encode_cursor(results[-1]) if more else None}


def encode_cursor(entry: Entry) -> str:
    position = [entry["occurred_at"], entry["service"], entry["id"]]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, service, entry_id = json.loads(raw)
        when = datetime.fromisoformat(moment)
        if when.tzinfo is None or not isinstance(service, str) or type(entry_id) is not int:
            raise ValueError
        return when.astimezone(UTC), service, entry_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API gave") from None
