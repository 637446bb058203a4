"""Staff accounts: adding people, their roles, passwords, disabling them. Every change is on
record in the audit log, under the actor who made it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.staff import passwords
from services.staff.models import ROLES, Base, StaffMember, StaffSession
from shared import audit
from shared.errors import Conflict, InvalidInput, NotFound

MAX_NAME_CHARS = 200


def normalize_email(text: str) -> str:
    """One spelling per address: checked, and lower-cased whole (staff addresses are the
    organisation's, where case never tells two people apart)."""
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput(f"not an email address: {error}") from None
    return checked.normalized.lower()


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    return role


def _check_name(name: str | None, email: str) -> str:
    name = " ".join((name or "").split()) or email.split("@", 1)[0]
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise InvalidInput(f"a name is 1 to {MAX_NAME_CHARS} printable characters")
    return name


def view(member: StaffMember) -> dict[str, Any]:
    return {
        "id": member.id,
        "email": member.email,
        "name": member.name,
        "role": member.role,
        "has_password": member.password_hash is not None,
        "disabled": member.disabled_at is not None,
        "created_at": member.created_at.isoformat(),
    }


def add_member(
    session: Session,
    email: str,
    role: str,
    now: datetime,
    name: str | None = None,
    password: str | None = None,
) -> StaffMember:
    address = normalize_email(email)
    if session.scalar(select(StaffMember.id).where(StaffMember.email == address)) is not None:
        raise Conflict(f"{address} already has an account")
    member = StaffMember(
        email=address,
        name=_check_name(name, address),
        role=_check_role(role),
        password_hash=None if password is None else passwords.hash_password(password),
        created_at=now,
    )
    session.add(member)
    session.flush()
    audit.record(
        session,
        Base.metadata,
        "staff.added",
        "staff",
        member.id,
        {
            "email": address,
            "name": member.name,
            "role": member.role,
            "password": password is not None,
        },
    )
    return member


def find(session: Session, email_or_id: str | int) -> StaffMember:
    if isinstance(email_or_id, int) or str(email_or_id).isdigit():
        member = session.get(StaffMember, int(email_or_id))
    else:
        address = normalize_email(str(email_or_id))
        member = session.scalar(select(StaffMember).where(StaffMember.email == address))
    if member is None:
        raise NotFound("no staff member by that address or id")
    return member


def list_members(session: Session) -> list[StaffMember]:
    return list(session.scalars(select(StaffMember).order_by(StaffMember.email)))


def set_role(session: Session, member: StaffMember, role: str) -> StaffMember:
    before = member.role
    member.role = _check_role(role)
    if before != role:
        audit.record(
            session,
            Base.metadata,
            "staff.role_changed",
            "staff",
            member.id,
            audit.changes({"role": before}, {"role": role}),
        )
    return member


def set_password(session: Session, member: StaffMember, password: str | None) -> StaffMember:
    """A new password, or none (sign-in by mailed link only). Never recorded, only the fact."""
    member.password_hash = None if password is None else passwords.hash_password(password)
    action = "staff.password_removed" if password is None else "staff.password_set"
    audit.record(session, Base.metadata, action, "staff", member.id, {})
    return member


def disable(session: Session, member: StaffMember, now: datetime) -> StaffMember:
    """No more sign-ins, and every open session ends now."""
    if member.disabled_at is None:
        member.disabled_at = now
        ended = session.execute(
            update(StaffSession)
            .where(StaffSession.staff_id == member.id, StaffSession.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        audit.record(
            session,
            Base.metadata,
            "staff.disabled",
            "staff",
            member.id,
            {"sessions_ended": ended},
        )
    return member


def enable(session: Session, member: StaffMember) -> StaffMember:
    if member.disabled_at is not None:
        member.disabled_at = None
        audit.record(session, Base.metadata, "staff.enabled", "staff", member.id, {})
    return member
