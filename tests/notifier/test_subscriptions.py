"""Subscribers: addresses checked, double opt-in, the same answer for everyone, tokens that
cannot be forged, stretched or moved to another address."""

import time
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from services.notifier import subscriptions
from services.notifier.models import Subscriber
from shared.db import session_scope
from shared.errors import InvalidInput
from shared.events import utcnow


@pytest.mark.parametrize(
    "address",
    ["", "not an address", "a@b", "a" * 300 + "@example.org", "a@b.c\r\nBcc: x@y.z",
     "ada@example.org\nBcc: x@y.z", "ada@exa mple.org", None, 42],
)  # fmt: skip
def test_bad_addresses_are_refused(address):
    with pytest.raises(InvalidInput):
        subscriptions.normalize_address(address)


def test_addresses_are_normalized():
    assert subscriptions.normalize_address("  Ada@EXAMPLE.org ") == "Ada@example.org"
    assert subscriptions.normalize_address("ada@münchen.de") == "ada@xn--mnchen-3ya.de"
    with pytest.raises(InvalidInput):
        subscriptions.normalize_address("adä@example.org")  # needs SMTPUTF8


def subscribe(sessions, email="ada@example.org", frequency="weekly", cities=None, now=None):
    with session_scope(sessions) as session:
        subscriber = subscriptions.subscribe(session, email, frequency, cities, now or utcnow())
        return None if subscriber is None else subscriber.id


def test_confirmation_mail_at_most_every_ten_minutes(notifier_sessions):
    now = utcnow()
    first = subscribe(notifier_sessions, now=now)
    assert first is not None
    assert subscribe(notifier_sessions, now=now + timedelta(minutes=5)) is None
    assert subscribe(notifier_sessions, now=now + timedelta(minutes=11)) == first


def test_a_confirmed_address_changes_nothing_by_subscribing_again(notifier_sessions, tokens):
    subscriber_id = subscribe(notifier_sessions, cities=[3, 1])
    token = tokens.make("confirm", subscriber_id, "ada@example.org")
    with session_scope(notifier_sessions) as session:
        assert subscriptions.confirm(session, tokens, token, utcnow()).status == "confirmed"
    assert subscribe(notifier_sessions, frequency="daily", cities=[9]) is None
    with notifier_sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert (subscriber.status, subscriber.frequency, subscriber.city_ids) == (
            "confirmed", "weekly", [1, 3],
        )  # fmt: skip


def test_bad_preferences_are_refused(notifier_sessions):
    for frequency, cities in [("hourly", None), ("weekly", ["x"]), ("weekly", list(range(1, 60))),
                              ("weekly", [-1]), ("weekly", "1,2")]:  # fmt: skip
        with pytest.raises(InvalidInput):
            subscribe(notifier_sessions, frequency=frequency, cities=cities)


def test_tokens_work_once_for_their_purpose_address_and_time(
    notifier_sessions, tokens, monkeypatch
):
    ada = subscribe(notifier_sessions)
    bob = subscribe(notifier_sessions, email="bob@example.org")
    confirm = tokens.make("confirm", ada, "ada@example.org")

    def use(purpose: str, token: str):
        with session_scope(notifier_sessions) as session:
            return subscriptions.from_token(session, tokens, purpose, token)

    assert use("confirm", confirm).id == ada
    for purpose, token in [
        ("unsubscribe", confirm),  # another purpose
        ("confirm", confirm[:-2] + ("AA" if not confirm.endswith("AA") else "BB")),  # tampered
        ("confirm", tokens.make("confirm", bob, "ada@example.org")),  # another address
        ("confirm", "x" * 1000),
        (
            "confirm",
            URLSafeTimedSerializer("another key", salt="sistercities.confirm").dumps(
                [ada, tokens.fingerprint("ada@example.org")]
            ),
        ),
        ("confirm", tokens.make("confirm", 999_999, "ada@example.org")),  # unknown subscriber
    ]:
        with pytest.raises(InvalidInput):
            use(purpose, token)

    eight_days_ago = time.time() - timedelta(days=8).total_seconds()
    monkeypatch.setattr(time, "time", lambda: eight_days_ago)
    old = tokens.make("confirm", ada, "ada@example.org")
    monkeypatch.undo()
    with pytest.raises(InvalidInput, match="expired"):
        use("confirm", old)


def test_unsubscribe_and_preferences(notifier_sessions, tokens):
    ada = subscribe(notifier_sessions)
    with session_scope(notifier_sessions) as session:
        subscriptions.confirm(
            session, tokens, tokens.make("confirm", ada, "ada@example.org"), utcnow()
        )
        subscriptions.update_preferences(
            session, tokens, tokens.make("preferences", ada, "ada@example.org"), "daily", [7, 7, 2]
        )
    with session_scope(notifier_sessions) as session:
        token = tokens.make("unsubscribe", ada, "ada@example.org")
        subscriptions.unsubscribe(session, tokens, token, utcnow())
        subscriptions.unsubscribe(session, tokens, token, utcnow())  # twice is fine
    with notifier_sessions() as session:
        subscriber = session.get(Subscriber, ada)
        assert (subscriber.status, subscriber.frequency, subscriber.city_ids) == (
            "unsubscribed", "daily", [2, 7],
        )  # fmt: skip
        stats = subscriptions.stats(session)
    assert stats["by_status"] == {"unsubscribed": 1} and stats["total"] == 1
