"""Staff sessions: an opaque random id in the browser's cookie, its SHA-256 here. A session
is checked on every request the gateway serves with it, so ending one (revoked, its member
disabled, expired) stops it at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.staff import accounts
from services.staff.models import Base, StaffMember, StaffSession
from shared import audit
from shared.actor import acting_as, staff_actor
from shared.errors import Forbidden, NotFound

# Seen again within this long, a session's last_seen_at is left as it is: a write per request
# would buy a precision nobody reads.
TOUCH_SECONDS = 60
MAX_USER_AGENT_CHARS = 300
MAX_CLIENT_CHARS = 64


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session,
    member: StaffMember,
    method: str,
    client: str,
    user_agent: str,
    now: datetime,
    lifetime: timedelta,
) -> tuple[str, StaffSession]:
    """A new session for ``member``: returns its token (for the cookie, never stored) and row."""
    token = new_token()
    row = StaffSession(
        staff_id=member.id,
        token_hash=token_hash(token),
        method=method,
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        user_agent=(user_agent or "")[:MAX_USER_AGENT_CHARS],
        client=(client or "")[:MAX_CLIENT_CHARS],
    )
    session.add(row)
    session.flush()
    # Signing in is the member's own act, whoever the caller named.
    with acting_as(staff_actor(member.id, member.name, member.email)):
        audit.record(
            session,
            Base.metadata,
            "session.opened",
            "staff",
            member.id,
            {
                "session_id": row.id,
                "method": method,
                "client": row.client,
                "user_agent": row.user_agent,
            },
        )
    return token, row


def signed_in(member: StaffMember, row: StaffSession, token: str | None = None) -> dict[str, Any]:
    """What the gateway is told of a good session (and, once, its token)."""
    answer = {
        "session_id": row.id,
        "expires_at": row.expires_at.isoformat(),
        "staff": accounts.view(member),
    }
    if token is not None:
        answer["session_token"] = token
    return answer


def check(session: Session, token: str, now: datetime) -> tuple[dict[str, Any] | None, bool]:
    """The member a session token belongs to, if the session is still good, and whether its
    last use is worth recording (``touch``): the check comes with every staff request, and
    most need no write."""
    found = session.execute(
        select(StaffSession, StaffMember)
        .join(StaffMember, StaffMember.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == token_hash(token))
    ).one_or_none()
    if found is None:
        return None, False
    row, member = found
    if row.revoked_at is not None or row.expires_at <= now or member.disabled_at is not None:
        return None, False
    stale = (now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS
    return signed_in(member, row), stale


def touch(session: Session, session_id: int, now: datetime) -> None:
    session.execute(
        update(StaffSession).where(StaffSession.id == session_id).values(last_seen_at=now)
    )


def view(row: StaffSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "staff_id": row.staff_id,
        "method": row.method,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "user_agent": row.user_agent,
        "client": row.client,
    }


def open_sessions(session: Session, staff_id: int, now: datetime) -> list[StaffSession]:
    return list(
        session.scalars(
            select(StaffSession)
            .where(
                StaffSession.staff_id == staff_id,
                StaffSession.revoked_at.is_(None),
                StaffSession.expires_at > now,
            )
            .order_by(StaffSession.last_seen_at.desc())
        )
    )


def revoke(
    session: Session, session_id: int, now: datetime, owner_id: int | None = None
) -> StaffSession:
    """End a session. ``owner_id``: only if it is that member's (staff end their own; admins
    any)."""
    row = session.get(StaffSession, session_id)
    if row is None:
        raise NotFound("no such session")
    if owner_id is not None and row.staff_id != owner_id:
        raise Forbidden("that session is another staff member's")
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(
            session,
            Base.metadata,
            "session.revoked",
            "staff",
            row.staff_id,
            {"session_id": row.id},
        )
    return row


def end_by_token(session: Session, token: str, now: datetime) -> bool:
    """Signing out: the session the cookie names ends."""
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    audit.record(
        session, Base.metadata, "session.closed", "staff", row.staff_id, {"session_id": row.id}
    )
    return True
