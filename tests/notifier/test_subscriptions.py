"""Subscribers: addresses checked, double opt-in, the same answer for everyone, tokens that
cannot be forged, stretched or moved to another address."""

import time
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from services.notifier import stats, subscriptions
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
        to_mail = subscriptions.subscribe(session, email, frequency, cities, now or utcnow())
        return None if to_mail is None else to_mail.subscriber_id


def confirmation_link(sessions, tokens, subscriber_id: int) -> str:
    """The link the confirmation mail sent last to this subscriber carries."""
    with sessions() as session:
        return subscriptions.confirmation_token(tokens, session.get(Subscriber, subscriber_id))


def confirm(sessions, tokens, token: str) -> tuple[str, bool]:
    with session_scope(sessions) as session:
        subscriber, confirmed_now = subscriptions.confirm(session, tokens, token, utcnow())
        return subscriber.status, confirmed_now


def test_confirmation_mail_at_most_every_ten_minutes(notifier_sessions):
    now = utcnow()
    first = subscribe(notifier_sessions, now=now)
    assert first is not None
    assert subscribe(notifier_sessions, now=now + timedelta(minutes=5)) is None
    assert subscribe(notifier_sessions, now=now + timedelta(minutes=11)) == first


def test_a_confirmed_address_changes_nothing_by_subscribing_again(notifier_sessions, tokens):
    subscriber_id = subscribe(notifier_sessions, cities=[3, 1])
    token = confirmation_link(notifier_sessions, tokens, subscriber_id)
    assert confirm(notifier_sessions, tokens, token) == ("confirmed", True)
    later = utcnow() + timedelta(minutes=11)
    with session_scope(notifier_sessions) as session:
        to_mail = subscriptions.subscribe(session, "ada@example.org", "daily", [9, 3], later)
    # A mail with a link that adds the city not yet followed, and no change before it is used.
    assert to_mail == subscriptions.LinkMail("follow", subscriber_id, (9,))
    with notifier_sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert (subscriber.status, subscriber.frequency, subscriber.city_ids) == (
            "confirmed", "weekly", [1, 3],
        )  # fmt: skip


def confirmed(sessions, tokens, cities=None) -> int:
    subscriber_id = subscribe(sessions, cities=cities, now=utcnow() - timedelta(hours=1))
    confirm(sessions, tokens, confirmation_link(sessions, tokens, subscriber_id))
    return subscriber_id


def test_a_follow_link_adds_its_cities_once_and_only_for_its_subscriber(notifier_sessions, tokens):
    subscriber_id = confirmed(notifier_sessions, tokens, cities=[1, 3])
    token = tokens.make("follow", subscriber_id, "ada@example.org", city_ids=[9])
    for _ in range(2):  # the second use changes nothing
        with session_scope(notifier_sessions) as session:
            subscriber, added = subscriptions.follow(session, tokens, token)
            assert (subscriber.city_ids, added) == ([1, 3, 9], [9])
    other = tokens.make("follow", subscriber_id, "eve@example.org", city_ids=[9])
    # A changed character of the signature, not its last: the last carries two bits base64
    # ignores, so "...xw" and "...xx" are the same signature.
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (
        other,
        tampered,
        tokens.make("preferences", subscriber_id, "ada@example.org"),
    ):
        with notifier_sessions() as session, pytest.raises(InvalidInput):
            subscriptions.follow(session, tokens, bad)


def test_a_follow_link_does_nothing_once_its_subscriber_unsubscribed(notifier_sessions, tokens):
    subscriber_id = confirmed(notifier_sessions, tokens, cities=[1])
    token = tokens.make("follow", subscriber_id, "ada@example.org", city_ids=[9])
    with session_scope(notifier_sessions) as session:
        unsubscribe = tokens.make("unsubscribe", subscriber_id, "ada@example.org")
        subscriptions.unsubscribe(session, tokens, unsubscribe, utcnow())
    with notifier_sessions() as session, pytest.raises(InvalidInput, match="no longer works"):
        subscriptions.follow(session, tokens, token)


def test_a_recent_links_token_adds_cities_at_once_only_for_its_own_confirmed_address(
    notifier_sessions, tokens
):
    subscriber_id = confirmed(notifier_sessions, tokens, cities=[1])
    token = tokens.make("preferences", subscriber_id, "ada@example.org")
    with session_scope(notifier_sessions) as session:
        subscriber, added = subscriptions.follow_now(
            session, tokens, token, " ada@EXAMPLE.org ", [9, 1]
        )
        assert (subscriber.city_ids, added) == ([1, 9], [1, 9])
    unsubscribe = tokens.make("unsubscribe", subscriber_id, "ada@example.org")
    for bad_token, address, cities in (
        (token, "eve@example.org", [7]),  # another address: the mail way
        (token, "not an address", [7]),
        (token, "ada@example.org", []),
        (unsubscribe, "ada@example.org", [7]),  # a token of another purpose
        (token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:], "ada@example.org", [7]),
    ):
        with session_scope(notifier_sessions) as session:
            assert subscriptions.follow_now(session, tokens, bad_token, address, cities) is None
    with session_scope(notifier_sessions) as session:
        subscriptions.unsubscribe(session, tokens, unsubscribe, utcnow())
    with session_scope(notifier_sessions) as session:
        assert subscriptions.follow_now(session, tokens, token, "ada@example.org", [7]) is None
        assert session.get(Subscriber, subscriber_id).city_ids == [1, 9]


def test_a_subscriber_who_gets_all_the_news_is_told_so_rather_than_narrowed(
    notifier_sessions, tokens
):
    subscriber_id = confirmed(notifier_sessions, tokens)
    with session_scope(notifier_sessions) as session:
        to_mail = subscriptions.subscribe(session, "ada@example.org", "weekly", [9], utcnow())
    assert to_mail == subscriptions.LinkMail("follow", subscriber_id, ())


def test_a_preferences_link_goes_only_to_a_confirmed_address_and_at_most_every_ten_minutes(
    notifier_sessions, tokens
):
    now = utcnow()

    def ask(address: str, minutes: int = 0):
        with session_scope(notifier_sessions) as session:
            moment = now + timedelta(minutes=minutes)
            return subscriptions.request_preferences_link(session, address, moment)

    assert ask("nobody@example.org") is None
    subscribe(notifier_sessions, email="pending@example.org")
    assert ask("pending@example.org") is None
    subscriber_id = confirmed(notifier_sessions, tokens)
    assert ask("ada@example.org") == subscriptions.LinkMail("preferences", subscriber_id)
    assert ask("ada@example.org", minutes=5) is None
    assert ask("ada@example.org", minutes=11) == subscriptions.LinkMail(
        "preferences", subscriber_id
    )
    with pytest.raises(InvalidInput):
        ask("not an address")


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
    confirm(notifier_sessions, tokens, confirmation_link(notifier_sessions, tokens, ada))
    with session_scope(notifier_sessions) as session:
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
        counts = stats.subscribers(session)
    assert counts["by_status"] == {"unsubscribed": 1} and counts["total"] == 1


def test_a_confirmation_link_confirms_once_and_its_second_use_changes_nothing(
    notifier_sessions, tokens
):
    ada = subscribe(notifier_sessions)
    link = confirmation_link(notifier_sessions, tokens, ada)
    assert confirm(notifier_sessions, tokens, link) == ("confirmed", True)
    assert confirm(notifier_sessions, tokens, link) == ("confirmed", False)


def test_an_old_confirmation_link_does_not_resubscribe_whoever_unsubscribed(
    notifier_sessions, tokens
):
    ada = subscribe(notifier_sessions)
    link = confirmation_link(notifier_sessions, tokens, ada)
    confirm(notifier_sessions, tokens, link)
    with session_scope(notifier_sessions) as session:
        unsubscribe = tokens.make("unsubscribe", ada, "ada@example.org")
        subscriptions.unsubscribe(session, tokens, unsubscribe, utcnow())
    with pytest.raises(InvalidInput, match="already used"):
        confirm(notifier_sessions, tokens, link)
    with notifier_sessions() as session:
        assert session.get(Subscriber, ada).status == "unsubscribed"


def test_only_the_latest_confirmation_link_confirms(notifier_sessions, tokens):
    now = utcnow()
    ada = subscribe(notifier_sessions, now=now)
    first = confirmation_link(notifier_sessions, tokens, ada)
    assert subscribe(notifier_sessions, now=now + timedelta(minutes=11)) == ada
    latest = confirmation_link(notifier_sessions, tokens, ada)
    for stale in (first, tokens.make("confirm", ada, "ada@example.org")):  # or one unbound
        with pytest.raises(InvalidInput, match="newer one was sent"):
            confirm(notifier_sessions, tokens, stale)
    assert confirm(notifier_sessions, tokens, latest) == ("confirmed", True)
