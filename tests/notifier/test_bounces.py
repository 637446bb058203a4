"""Bounces after the fact, with real parts: a digest's envelope sender captured at a real SMTP
server is its signed VERP address; real DSN (RFC 3464) and ARF (RFC 5965) messages built with
the ``email`` package and sent to the running mailbox (aiosmtpd) are handed over and recorded:
a hard bounce or a complaint stops mail at once (the next digest run skips the subscriber), a
soft bounce counts once per message, and a forged id changes nothing."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage, Message

import pytest
import structlog
from sqlalchemy import select

from services.notifier import bounces, subscriptions
from services.notifier.models import BounceReport, Subscriber
from services.notifier.tokens import purpose_key
from shared.db import session_scope
from shared.events import utcnow
from tests.notifier.conftest import KEY
from tests.notifier.test_mailbox import Running, settings_for
from tests.notifier.test_sending import add_subscriber, news, run, story
from tests.stack import free_port

DOMAIN = "sister.example"


@pytest.fixture
def running(tmp_path) -> Iterator[Running]:
    server = Running(settings_for(tmp_path))
    yield server
    server.controller.stop()


def _fields(**fields: str) -> Message:
    block = Message()
    for name, value in fields.items():
        block[name.replace("_", "-")] = value
    return block


def multipart_report(report_type: str, text: str) -> EmailMessage:
    """RFC 6522: a readable first part, the machine-readable report parts attached after."""
    report = EmailMessage()
    report["From"], report["Subject"] = "MAILER-DAEMON@mx.example.org", "Report"
    report.set_content(text)
    report.make_mixed()
    report.replace_header("Content-Type", f"multipart/report; report-type={report_type}")
    return report


def dsn(action: str, status: str, recipient: str = "ada@example.org") -> EmailMessage:
    """A delivery status notification as a mail server writes it (RFC 3464)."""
    report = multipart_report("delivery-status", "Your message could not be delivered.")
    status_part = Message()
    status_part["Content-Type"] = "message/delivery-status"
    status_part.set_payload([
        _fields(Reporting_MTA="dns; mx.example.org"),
        _fields(Final_Recipient=f"rfc822; {recipient}", Action=action, Status=status,
                Diagnostic_Code="smtp; 550 5.1.1 user unknown"),
    ])  # fmt: skip
    report.attach(status_part)
    return report


def arf(feedback_type: str = "abuse", return_path: str | None = None) -> EmailMessage:
    """A feedback-loop complaint (RFC 5965), the complained-of message's headers returned."""
    report = multipart_report("feedback-report", "This is an email abuse report.")
    feedback = Message()
    feedback["Content-Type"] = "message/feedback-report"
    feedback.set_payload(f"Feedback-Type: {feedback_type}\r\nUser-Agent: isp-fbl/1.0\r\n"
                         "Version: 1\r\n")  # fmt: skip
    report.attach(feedback)
    if return_path is not None:
        headers = Message()
        headers["Content-Type"] = "text/rfc822-headers"
        headers.set_payload(f"Return-Path: <{return_path}>\r\nSubject: Your digest\r\n")
        report.attach(headers)
    return report


def send_report(running: Running, report: EmailMessage, to: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.docmd("MAIL", "FROM:<>")[0] == 250  # bounces come from the null sender
        assert smtp.docmd("RCPT", f"TO:<{to}>")[0] == 250
        return smtp.data(report.as_bytes())


def a_digest_to(sessions, settings, sink, email: str, period: str = "weekly:2026-W48"):
    with session_scope(sessions) as session:
        subscriber_id = add_subscriber(session, email)
    news(sessions, story(1, []))
    run(sessions, settings, sink, [subscriber_id], period)
    (received,) = sink.to(email)
    return subscriber_id, received


def record(sessions, tokens, args: list) -> None:
    with session_scope(sessions) as session:
        subscriptions.record_bounce(session, tokens, *args, utcnow())


def test_a_digest_goes_out_with_its_own_signed_return_path(notifier_sessions, mail_settings, sink,
                                                           tokens):  # fmt: skip
    subscriber_id, received = a_digest_to(notifier_sessions, mail_settings, sink, "ada@ex.org")
    local, _, domain = received.sender.partition("@")
    assert domain == DOMAIN and local.startswith("bounces+") and len(local) <= 64
    assert local == local.lower()
    bounced = tokens.bounce_ids.read(bounces.id_of(received.sender))
    assert bounced is not None and bounced.subscriber_id == subscriber_id
    assert bounced.message_kind == "digest"
    # Servers that shout the address back still name the same message.
    assert tokens.bounce_ids.read(bounces.id_of(received.sender.upper())) == bounced


def test_a_hard_bounce_stops_mail_at_once_and_the_next_digest_skips_the_subscriber(
    notifier_sessions, mail_settings, sink, tokens, running
):
    subscriber_id, received = a_digest_to(notifier_sessions, mail_settings, sink, "ada@ex.org")
    assert send_report(running, dsn("failed", "5.1.1"), received.sender)[0] == 250
    (args,) = running.bounces
    assert args[1] == bounces.HARD and "5.1.1" in args[2]
    record(notifier_sessions, tokens, args)
    with notifier_sessions() as session:
        assert session.get(Subscriber, subscriber_id).status == "bounced"
        (report,) = session.scalars(select(BounceReport)).all()
        assert report.kind == "hard" and "5.1.1" in report.reason

    sink.clear()
    outcome = run(notifier_sessions, mail_settings, sink, [subscriber_id], "weekly:2026-W49")
    assert (outcome.sent, outcome.skipped) == (0, 1)
    assert sink.to("ada@ex.org") == []


def test_a_complaint_stops_mail_at_once_wherever_it_is_sent(
    notifier_sessions, mail_settings, sink, tokens, running
):
    subscriber_id, received = a_digest_to(notifier_sessions, mail_settings, sink, "ada@ex.org")
    # Feedback loops mail a fixed address: the id is in the returned message's Return-Path.
    complaint = arf("abuse", return_path=received.sender)
    assert send_report(running, complaint, f"bounces@{DOMAIN}")[0] == 250
    (args,) = running.bounces
    assert args[1] == bounces.COMPLAINT
    record(notifier_sessions, tokens, args)
    with notifier_sessions() as session:
        assert session.get(Subscriber, subscriber_id).status == "complained"
    # A report that mail was wrongly taken for spam is no complaint.
    assert send_report(running, arf("not-spam", received.sender), received.sender)[0] == 250
    assert len(running.bounces) == 1


def test_a_soft_bounce_counts_once_per_message_toward_the_limit(
    notifier_sessions, mail_settings, sink, tokens, running
):
    subscriber_id, received = a_digest_to(notifier_sessions, mail_settings, sink, "ada@ex.org")
    for action, status in (("delayed", "4.4.7"), ("failed", "4.2.2"), ("delayed", "4.4.7")):
        assert send_report(running, dsn(action, status), received.sender)[0] == 250
    assert [args[1] for args in running.bounces] == [bounces.SOFT] * 3
    for args in running.bounces:
        record(notifier_sessions, tokens, args)  # the same message: counted once
    with notifier_sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert (subscriber.status, subscriber.soft_failures) == ("confirmed", 1)

    ids = [tokens.bounce_ids.make(subscriber_id, "digest", n) for n in range(100, 104)]
    for bounce_id in ids:  # four more messages delayed: the limit of five is reached
        record(notifier_sessions, tokens, [bounce_id, bounces.SOFT, "delayed 4.4.7"])
    with notifier_sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert (subscriber.status, subscriber.soft_failures) == ("bounced", 5)


def test_a_forged_or_missing_id_is_accepted_and_changes_nothing(
    notifier_sessions, mail_settings, sink, tokens, running
):
    subscriber_id, received = a_digest_to(notifier_sessions, mail_settings, sink, "ada@ex.org")
    good = bounces.id_of(received.sender)
    flipped = good[:-1] + ("a" if good[-1] != "a" else "b")
    other_key = bounces.BounceIds("another-key").make(subscriber_id, "digest", 1)
    forged = [flipped, other_key, good[:-2], "x" * len(good)]
    with structlog.testing.capture_logs() as logs:
        for bounce_id in forged:
            answer = send_report(running, dsn("failed", "5.1.1"), f"bounces+{bounce_id}@{DOMAIN}")
            assert answer[0] == 250  # as for a good one
        assert send_report(running, dsn("failed", "5.1.1"), f"bounces@{DOMAIN}")[0] == 250
        assert send_report(running, arf("abuse"), f"bounces@{DOMAIN}")[0] == 250
    assert running.bounces == []
    assert [line["event"] for line in logs] == ["mail_bounce_ignored"] * 6
    assert not any(bounce_id in str(line) for line in logs for bounce_id in [good, *forged])
    for bounce_id in forged:  # the worker checks again: a forged task changes nothing either
        record(notifier_sessions, tokens, [bounce_id, bounces.HARD, "failed 5.1.1"])
    with notifier_sessions() as session:
        assert session.get(Subscriber, subscriber_id).status == "confirmed"
        assert session.scalars(select(BounceReport)).all() == []


def test_mail_that_reports_nothing_is_accepted_and_ignored(running, tokens):
    address = f"bounces+{tokens.bounce_ids.make(7, 'digest', 1)}@{DOMAIN}"
    vacation = EmailMessage()
    vacation["Subject"] = "Out of office"
    vacation.set_content("Back on Monday.")
    for message in (vacation, dsn("delivered", "2.0.0"), dsn("relayed", "2.0.0")):
        assert send_report(running, message, address)[0] == 250
    assert running.bounces == [] and running.handed_over == []


def test_a_bounce_id_is_short_lowercase_and_signed(tokens):
    bounce_id = tokens.bounce_ids.make(2**31 - 1, "confirm", 2**31 - 1)
    assert len(f"bounces+{bounce_id}") <= 64 and bounce_id == bounce_id.lower()
    assert bounce_id.isalnum()
    assert tokens.bounce_ids.read(bounce_id) == (2**31 - 1, "confirm", 2**31 - 1)
    # The mailbox derives the same key from the one it holds.
    checker = bounces.BounceIds(bounces.bounce_key(purpose_key(KEY, "unsubscribe")))
    assert checker.read(bounce_id) is not None


def test_a_bounce_whose_worker_cannot_be_reached_gets_a_try_again_later(tmp_path, tokens):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = Running(settings_for(tmp_path, REDIS_URL=closed), through_the_broker=True)
    address = f"bounces+{tokens.bounce_ids.make(7, 'digest', 1)}@{DOMAIN}"
    try:
        with (
            pytest.raises(smtplib.SMTPDataError) as deferred,
            smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp,
        ):
            smtp.sendmail("", [address], dsn("failed", "5.1.1").as_bytes())
    finally:
        server.controller.stop()
    assert deferred.value.smtp_code == 451


@pytest.mark.parametrize(
    ("path", "address"),
    [
        ("<bounces+abc@example.org>", "bounces+abc@example.org"),
        ("  < bounces+abc@example.org >  ", "bounces+abc@example.org"),
        ("bounces+abc@example.org", "bounces+abc@example.org"),
        ("<>", None),
        ("@example.org", None),
        ("bounces@", None),
        ("<a b@example.org>", None),
        ("a@a" + "@a" * 20_000, "a@a" + "@a" * 20_000),  # one pass, whatever its length
    ],
)
def test_a_return_path_is_read_as_a_bare_address(path, address):
    assert bounces._bare_address(path) == address
