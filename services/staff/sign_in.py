"""Signing in: by a one-time link mailed to the staff member's address, or by password.

Every attempt (a link asked for, a password tried) is recorded before it is judged, and
counted against two limits over sliding windows: per address and way in (so someone
hammering passwords for an address cannot also stop its mailed links) and per client. A
password that is right is not counted, as staff typing theirs are never the ones to stop.
The answers never tell whether an address has an account.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from limits import parse_many
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.staff import accounts, passwords, sessions
from services.staff.models import SignInAttempt, SignInLink, StaffMember
from shared.errors import InvalidInput

LINK = "link"
PASSWORD = "password"  # noqa: S105 (the way in, not a password)


@dataclass(frozen=True)
class Limits:
    per_address: str  # "5/minute;20/hour"
    per_client: str


@dataclass(frozen=True)
class LinkToSend:
    """A link to mail, once the transaction that made it has committed."""

    email: str
    name: str
    token: str


def _rules(text: str) -> list[tuple[int, int]]:
    return [(item.amount, item.get_expiry()) for item in parse_many(text)]


def _refusal(session: Session, where, rules: list[tuple[int, int]], now: datetime) -> int | None:
    """Seconds until an attempt would be allowed, if a rule is already used up."""
    waits = []
    for amount, seconds in rules:
        since = now - timedelta(seconds=seconds)
        times = list(
            session.scalars(
                select(SignInAttempt.attempted_at)
                .where(*where, SignInAttempt.attempted_at > since, ~SignInAttempt.succeeded)
                .order_by(SignInAttempt.attempted_at.desc())
                .limit(amount + 1)
            )
        )
        if len(times) > amount:
            # Allowed again when the attempt that filled the window leaves it.
            oldest = times[amount - 1]
            waits.append(
                max(1, math.ceil((oldest + timedelta(seconds=seconds) - now).total_seconds()))
            )
    return max(waits) if waits else None


def attempt(
    session: Session, email: str, client: str, method: str, now: datetime, limits: Limits
) -> tuple[SignInAttempt, int | None]:
    """Record an attempt and judge it against the limits (this attempt counted): the row,
    and the seconds to wait when it is over a limit."""
    row = SignInAttempt(
        email=email[:254], client=client[:64], method=method, attempted_at=now, succeeded=False
    )
    session.add(row)
    session.flush()
    by_address = _refusal(
        session,
        (SignInAttempt.email == row.email, SignInAttempt.method == method),
        _rules(limits.per_address),
        now,
    )
    by_client = _refusal(
        session, (SignInAttempt.client == row.client,), _rules(limits.per_client), now
    )
    waits = [wait for wait in (by_address, by_client) if wait is not None]
    return row, (max(waits) if waits else None)


def _address(email: str) -> str:
    try:
        return accounts.normalize_email(email)
    except InvalidInput:
        return email.strip().lower()[:254]


def _active_member(session: Session, address: str) -> StaffMember | None:
    return session.scalar(
        select(StaffMember).where(StaffMember.email == address, StaffMember.disabled_at.is_(None))
    )


def request_link(
    session: Session, email: str, client: str, now: datetime, limits: Limits, lifetime: timedelta
) -> tuple[dict[str, Any], LinkToSend | None]:
    """Ask for a sign-in link: the answer, and the link to mail if the address is an active
    staff member's. The answer is the same for any address."""
    address = _address(email)
    _row, wait = attempt(session, address, client, LINK, now, limits)
    if wait is not None:
        return {"outcome": "rate_limited", "retry_after": wait}, None
    member = _active_member(session, address)
    if member is None:
        return {"outcome": "link_sent"}, None
    token = sessions.new_token()
    session.add(
        SignInLink(
            staff_id=member.id,
            token_hash=sessions.token_hash(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return {"outcome": "link_sent"}, LinkToSend(member.email, member.name, token)


def redeem_link(
    session: Session,
    token: str,
    client: str,
    user_agent: str,
    now: datetime,
    lifetime: timedelta,
) -> dict[str, Any]:
    """Use a mailed link, once, before it expires: a new session."""
    link = session.scalar(
        select(SignInLink).where(SignInLink.token_hash == sessions.token_hash(token))
    )
    if link is None or link.used_at is not None or link.expires_at <= now:
        return {"outcome": "refused"}
    link.used_at = now
    member = session.get(StaffMember, link.staff_id)
    if member is None or member.disabled_at is not None:
        return {"outcome": "refused"}
    session_token, row = sessions.open_session(
        session, member, LINK, client, user_agent, now, lifetime
    )
    return {"outcome": "signed_in", **sessions.signed_in(member, row, session_token)}


def sign_in_with_password(
    session: Session,
    email: str,
    password: str,
    client: str,
    user_agent: str,
    now: datetime,
    limits: Limits,
    lifetime: timedelta,
) -> dict[str, Any]:
    address = _address(email)
    row, wait = attempt(session, address, client, PASSWORD, now, limits)
    if wait is not None:
        return {"outcome": "rate_limited", "retry_after": wait}
    member = _active_member(session, address)
    if not passwords.verify(member.password_hash if member else None, password):
        return {"outcome": "refused"}
    row.succeeded = True
    if passwords.needs_rehash(member.password_hash):
        member.password_hash = passwords.hash_password(password)
    session_token, opened = sessions.open_session(
        session, member, PASSWORD, client, user_agent, now, lifetime
    )
    return {"outcome": "signed_in", **sessions.signed_in(member, opened, session_token)}


def purge(session: Session, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Attempts and links a day old are of no more use."""
    cutoff = now - keep
    attempts = session.execute(
        SignInAttempt.__table__.delete().where(SignInAttempt.attempted_at < cutoff)
    ).rowcount
    links = session.execute(
        SignInLink.__table__.delete().where(SignInLink.expires_at < cutoff)
    ).rowcount
    return attempts + links
