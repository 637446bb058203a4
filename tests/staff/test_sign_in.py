"""Signing in, as plain functions on the staff service's real database: links work once and
expire, disabled members and ended sessions are refused, and attempts are limited per
address (each way in apart) and per client."""

from datetime import timedelta

import pytest

from services.staff import accounts, sessions, sign_in
from shared.db import make_session_factory, session_scope
from shared.events import utcnow

LIMITS = sign_in.Limits(per_address="3/minute", per_client="5/minute")
HOUR = timedelta(hours=1)
PASSWORD = "a long enough passphrase"


@pytest.fixture
def staff_sessions(clean_databases):
    return make_session_factory(clean_databases["staff"])


@pytest.fixture
def ada(staff_sessions) -> int:
    with session_scope(staff_sessions) as session:
        return accounts.add_member(
            session, "ada@example.org", "admin", utcnow(), "Ada Lovelace", PASSWORD
        ).id


def link_for(staff_sessions, email: str, now, client: str = "10.0.0.1") -> str | None:
    with session_scope(staff_sessions) as session:
        _answer, to_mail = sign_in.request_link(session, email, client, now, LIMITS, HOUR)
    return None if to_mail is None else to_mail.token


def redeem(staff_sessions, token: str, now) -> dict:
    with session_scope(staff_sessions) as session:
        return sign_in.redeem_link(session, token, "10.0.0.1", "a browser", now, HOUR)


def password(staff_sessions, email: str, given: str, now, client: str = "10.0.0.1") -> dict:
    with session_scope(staff_sessions) as session:
        return sign_in.sign_in_with_password(
            session, email, given, client, "a browser", now, LIMITS, HOUR
        )


def test_a_link_signs_in_once_and_not_after_it_expires(staff_sessions, ada):
    now = utcnow()
    assert link_for(staff_sessions, "nobody@example.org", now) is None
    token = link_for(staff_sessions, "ada@example.org", now)
    signed_in = redeem(staff_sessions, token, now + timedelta(minutes=1))
    assert signed_in["outcome"] == "signed_in" and signed_in["staff"]["id"] == ada
    assert redeem(staff_sessions, token, now + timedelta(minutes=2)) == {"outcome": "refused"}

    late = link_for(staff_sessions, "ada@example.org", now)
    assert redeem(staff_sessions, late, now + HOUR) == {"outcome": "refused"}


def test_a_session_ends_when_revoked_expired_or_its_member_disabled(staff_sessions, ada):
    now = utcnow()
    first = password(staff_sessions, "ada@example.org", PASSWORD, now)
    second = password(staff_sessions, "ada@example.org", PASSWORD, now)
    with session_scope(staff_sessions) as session:
        assert sessions.check(session, first["session_token"], now)[0]["staff"]["id"] == ada
        assert sessions.check(session, first["session_token"], now + HOUR) == (None, False)
        sessions.revoke(session, first["session_id"], now)
        assert sessions.check(session, first["session_token"], now) == (None, False)
        assert sessions.check(session, second["session_token"], now)[0] is not None
        # Seen again a minute later: worth recording (once a minute at most).
        assert sessions.check(session, second["session_token"], now + timedelta(seconds=61))[1]
        accounts.disable(session, accounts.find(session, ada), now)
        assert sessions.check(session, second["session_token"], now) == (None, False)
    assert password(staff_sessions, "ada@example.org", PASSWORD, now)["outcome"] == "refused"
    assert link_for(staff_sessions, "ada@example.org", now) is None


def test_sessions_are_kept_as_hashes_only(staff_sessions, ada, clean_databases):
    token = password(staff_sessions, "ada@example.org", PASSWORD, utcnow())["session_token"]
    with clean_databases["staff"].connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM staff_sessions").scalar_one()
    assert stored == sessions.token_hash(token) and token not in stored


def test_wrong_passwords_are_limited_per_address_and_the_link_is_counted_apart(staff_sessions, ada):
    now = utcnow()
    for _ in range(3):
        assert password(staff_sessions, "ada@example.org", "wrong guess!", now)["outcome"] == (
            "refused"
        )
    limited = password(staff_sessions, "ada@example.org", PASSWORD, now)
    assert limited["outcome"] == "rate_limited" and 0 < limited["retry_after"] <= 60
    assert link_for(staff_sessions, "ada@example.org", now) is not None
    later = now + timedelta(seconds=61)
    assert password(staff_sessions, "ada@example.org", PASSWORD, later)["outcome"] == "signed_in"


def test_a_right_password_is_never_counted(staff_sessions, ada):
    now = utcnow()
    for _ in range(5):
        assert password(staff_sessions, "ada@example.org", PASSWORD, now)["outcome"] == (
            "signed_in"
        )


def test_attempts_are_limited_per_client_whatever_the_address(staff_sessions, ada):
    now = utcnow()
    for number in range(5):
        link_for(staff_sessions, f"someone{number}@example.org", now, client="10.9.9.9")
    with session_scope(staff_sessions) as session:
        answer, to_mail = sign_in.request_link(
            session, "ada@example.org", "10.9.9.9", now, LIMITS, HOUR
        )
    assert answer["outcome"] == "rate_limited" and to_mail is None
    assert link_for(staff_sessions, "ada@example.org", now, client="10.8.8.8") is not None
