"""Digests marked sent and never acknowledged: made by killing a real process between the
ledger's mark and the message's last line, listed for staff, and re-sent by staff's choice
once, with the original Message-ID and content, however many times or hands press."""

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import select

from services.notifier import ledger, sending
from services.notifier.models import Delivery
from services.notifier.senders import SmtpSender
from shared.db import session_scope
from shared.events import utcnow
from tests.notifier.test_sending import DOMAIN, add_subscriber, news, story

PERIOD = "weekly:2026-W48"
ROOT = Path(__file__).resolve().parents[2]


def killed_at_the_last_line(sessions, sink, dies_at: int, delivery_ids: list[int]) -> None:
    """The batch sent by a process of its own, SIGKILLed right after the ``dies_at``-th mark."""
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    argv = [sys.executable, "-m", "tests.notifier.killed_at_the_last_line", url, sink.url]
    done = subprocess.run(
        [*argv, str(dies_at), *map(str, delivery_ids)], cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == -9, done.stderr.decode()


def resend(sessions, settings, sink, now):
    with SmtpSender(sink.url) as sender:
        return sending.resend_unconfirmed(sessions.kw["bind"], sender, PERIOD, settings, now)


def rows(sessions) -> dict[int, Delivery]:
    with sessions() as session:
        return {row.id: row for row in session.scalars(select(Delivery))}


def test_a_digest_lost_at_the_last_line_is_listed_and_resent_once_with_its_message_id(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"r{n}@example.org") for n in range(3)]
    news(notifier_sessions, story(1, []), story(2, [10]))
    with session_scope(notifier_sessions) as session:
        claimed = ledger.claim(session, ids, PERIOD, utcnow(), DOMAIN)

    killed_at_the_last_line(notifier_sessions, sink, 2, claimed)

    first, lost, untouched = (rows(notifier_sessions)[delivery] for delivery in claimed)
    # The first message went whole, its 250 recorded with the second's mark; the second was
    # marked and killed before its "."; the third was never reached.
    assert [item.recipients for item in sink.received] == [["r0@example.org"]]
    assert first.status == "sent" and first.accepted_at is not None
    assert lost.status == "sent" and lost.accepted_at is None
    assert untouched.status == "claimed"
    news(notifier_sessions, story(3, []))  # arrived after the digest was cut: not in it

    with notifier_sessions() as session:
        assert ledger.unconfirmed(session, utcnow()) == []  # as recent as a batch under way
        later = utcnow() + ledger.SETTLING
        (listed,) = ledger.unconfirmed(session, later)
        assert ledger.unconfirmed(session, later, "weekly:2026-W47") == []
    assert (listed.delivery_id, listed.subscriber_id, listed.period) == (lost.id, ids[1], PERIOD)
    assert listed.message_id == ledger.message_id(ids[1], PERIOD, DOMAIN)

    outcome = resend(notifier_sessions, mail_settings, sink, later)
    assert (outcome.resent, outcome.skipped, outcome.failed) == (1, 0, 0)
    original, resent = sink.received[0].message, sink.to("r1@example.org")[0].message
    assert resent["Message-ID"] == listed.message_id
    assert resent["Subject"] == original["Subject"] == "2 new stories from Sister Cities"
    text = resent.get_body(("plain",)).get_content()
    assert "Story 1" in text and "Story 2" in text and "Story 3" not in text
    again = rows(notifier_sessions)[lost.id]
    assert again.status == "sent" and again.accepted_at is not None and again.resent_at

    # Pressed again: nothing left to send, and nothing listed.
    assert resend(notifier_sessions, mail_settings, sink, later).resent == 0
    assert len(sink.to("r1@example.org")) == 1 and len(sink.received) == 2
    with notifier_sessions() as session:
        assert ledger.unconfirmed(session, later) == []
    assert rows(notifier_sessions)[untouched.id].status == "claimed"  # the batch's retry's


def test_two_hands_resending_at_once_send_each_digest_once(notifier_sessions, mail_settings, sink):
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"t{n}@example.org") for n in range(6)]
    news(notifier_sessions, story(1, []))
    with session_scope(notifier_sessions) as session:
        claimed = ledger.claim(session, ids, PERIOD, utcnow(), DOMAIN)
    for delivery in claimed[:3]:  # three processes, each killed at its first last line
        killed_at_the_last_line(notifier_sessions, sink, 1, [delivery])
    assert sink.received == []
    later = utcnow() + ledger.SETTLING
    outcomes = []

    def press():
        outcomes.append(resend(notifier_sessions, mail_settings, sink, later))

    hands = [threading.Thread(target=press) for _ in range(3)]
    for hand in hands:
        hand.start()
    for hand in hands:
        hand.join()
    assert sum(outcome.resent for outcome in outcomes) == 3
    recipients = sorted(r for item in sink.received for r in item.recipients)
    assert recipients == ["t0@example.org", "t1@example.org", "t2@example.org"]
    assert len({item.message["Message-ID"] for item in sink.received}) == 3


def test_a_resend_refused_for_now_can_be_pressed_again(notifier_sessions, mail_settings, sink):
    with session_scope(notifier_sessions) as session:
        (reader,) = [add_subscriber(session, "busy@example.org")]
    news(notifier_sessions, story(1, []))
    with session_scope(notifier_sessions) as session:
        claimed = ledger.claim(session, [reader], PERIOD, utcnow(), DOMAIN)
    killed_at_the_last_line(notifier_sessions, sink, 1, claimed)
    later = utcnow() + ledger.SETTLING
    # Refused at the end of the message, after the re-send's mark: the mark is undone.
    sink.refuse_data["busy@example.org"] = "451 4.3.0 try again later"
    assert resend(notifier_sessions, mail_settings, sink, later).failed == 1
    with notifier_sessions() as session:
        assert [row.delivery_id for row in ledger.unconfirmed(session, later)] == claimed
    sink.refuse_data.clear()
    assert resend(notifier_sessions, mail_settings, sink, later).resent == 1
    assert len(sink.to("busy@example.org")) == 1
