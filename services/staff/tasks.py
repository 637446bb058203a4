"""The staff service's tasks: thin wrappers around accounts, sign-in and sessions. Secrets
(passwords, link and session tokens) come as keyword arguments, which task messages never
show in their description (``shared.task_messages``)."""

from __future__ import annotations

from datetime import timedelta

from services.staff import accounts, sessions, sign_in
from services.staff.worker import app, runtime
from shared.db import session_scope
from shared.events import utcnow
from shared.logs import get_logger

log = get_logger(__name__)
SIGN_IN_MAIL_TASK = "notifier.send_sign_in_link"


def _limits() -> sign_in.Limits:
    return sign_in.Limits(runtime.settings.address_limit, runtime.settings.client_limit)


def _session_lifetime() -> timedelta:
    return timedelta(hours=runtime.settings.session_hours)


@app.task(name="staff.request_sign_in_link", shared=False)
def request_sign_in_link(email: str, client: str) -> dict:
    """A one-time link mailed to a staff member; the same answer for any address."""
    minutes = runtime.settings.link_minutes
    with session_scope(runtime.sessions) as session:
        answer, to_mail = sign_in.request_link(
            session, email, client, utcnow(), _limits(), timedelta(minutes=minutes)
        )
    if answer["outcome"] == "rate_limited":
        log.warning("sign_in_attempts_limited", method="link", client=client)
    if to_mail is not None:
        # After the commit: a link the notifier mails is one the database holds.
        app.send_task(
            SIGN_IN_MAIL_TASK,
            kwargs={
                "email": to_mail.email,
                "name": to_mail.name,
                "url": f"{runtime.settings.public_base_url}/staff/sign-in/{to_mail.token}",
                "minutes": minutes,
            },
            kwargsrepr=repr({"email": to_mail.email, "url": "<secret>"}),
        )
    return answer


@app.task(name="staff.redeem_sign_in_link", shared=False)
def redeem_sign_in_link(*, token: str, client: str, user_agent: str) -> dict:
    with session_scope(runtime.sessions) as session:
        answer = sign_in.redeem_link(
            session, token, client, user_agent, utcnow(), _session_lifetime()
        )
    log.info("sign_in_by_link", outcome=answer["outcome"], client=client)
    return answer


@app.task(name="staff.sign_in_with_password", shared=False)
def sign_in_with_password(*, email: str, password: str, client: str, user_agent: str) -> dict:
    with session_scope(runtime.sessions) as session:
        answer = sign_in.sign_in_with_password(
            session,
            email,
            password,
            client,
            user_agent,
            utcnow(),
            _limits(),
            _session_lifetime(),
        )
    level = log.warning if answer["outcome"] != "signed_in" else log.info
    level("sign_in_by_password", outcome=answer["outcome"], client=client)
    return answer


@app.task(name="staff.check_session", shared=False)
def check_session(*, token: str) -> dict:
    """The member behind a session cookie, or ``{"staff": None}``: asked on every request
    the gateway serves with the cookie."""
    now = utcnow()
    with runtime.read_sessions() as session:
        answer, stale = sessions.check(session, token, now)
    if stale:
        with session_scope(runtime.sessions) as session:
            sessions.touch(session, answer["session_id"], now)
    return answer or {"staff": None}


@app.task(name="staff.end_session", shared=False)
def end_session(*, token: str) -> dict:
    with session_scope(runtime.sessions) as session:
        return {"ended": sessions.end_by_token(session, token, utcnow())}


@app.task(name="staff.list_sessions", shared=False)
def list_sessions(staff_id: int) -> dict:
    with runtime.read_sessions() as session:
        rows = sessions.open_sessions(session, staff_id, utcnow())
        return {"results": [sessions.view(row) for row in rows]}


@app.task(name="staff.revoke_session", shared=False)
def revoke_session(session_id: int, owner_id: int | None = None) -> dict:
    with session_scope(runtime.sessions) as session:
        return sessions.view(sessions.revoke(session, session_id, utcnow(), owner_id))


@app.task(name="staff.list_members", shared=False)
def list_members() -> dict:
    with runtime.read_sessions() as session:
        return {"results": [accounts.view(member) for member in accounts.list_members(session)]}


@app.task(name="staff.add_member", shared=False)
def add_member(email: str, role: str, name: str | None = None) -> dict:
    with session_scope(runtime.sessions) as session:
        return accounts.view(accounts.add_member(session, email, role, utcnow(), name))


@app.task(name="staff.update_member", shared=False)
def update_member(staff_id: int, changes: dict) -> dict:
    """``changes``: ``role`` and/or ``disabled`` (true ends every session of theirs)."""
    with session_scope(runtime.sessions) as session:
        member = accounts.find(session, staff_id)
        if "role" in changes:
            accounts.set_role(session, member, changes["role"])
        if changes.get("disabled") is True:
            accounts.disable(session, member, utcnow())
        elif changes.get("disabled") is False:
            accounts.enable(session, member)
        return accounts.view(member)


@app.task(name="staff.purge_attempts", shared=False)
def purge_attempts() -> dict:
    with session_scope(runtime.sessions) as session:
        return {"deleted": sign_in.purge(session, utcnow())}
