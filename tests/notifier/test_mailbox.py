"""The unsubscribe mailbox, a real SMTP server on a free port spoken to with smtplib: mail to
unsubscribe@ with a validly signed token anywhere in its subject is handed over, and nothing
else; other recipients, oversized messages and a broker that is down get the SMTP answers
that make a sending server give up or retry; nobody learns who subscribes."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.header import Header
from email.message import EmailMessage

import pytest
import structlog

from services.notifier import mailbox
from services.notifier.config import load_settings
from services.notifier.tokens import Tokens
from tests.notifier.conftest import KEY
from tests.stack import free_port

ADDRESS = "unsubscribe@sister.example"


def settings_for(tmp_path, **more):
    return load_settings({
        "ENVIRONMENT": "test", "DATA_DIR": str(tmp_path), "SECRET_KEY": KEY,
        "MAIL_FROM": "Sister Cities <news@sister.example>", **more,
    })  # fmt: skip


class Running:
    """The mailbox in this process, its hand-overs recorded instead of sent (or sent through
    the broker of ``settings``)."""

    def __init__(self, settings, through_the_broker: bool = False):
        self.handed_over: list[str] = []
        self.port = free_port()
        record = None if through_the_broker else self.handed_over.append
        self.controller = mailbox.start(settings, "127.0.0.1", self.port, record)

    def send(self, subject: str, to: str = ADDRESS, body: str = "") -> dict:
        """Send like a mail client following the mailto; smtplib raises on a refusal."""
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "ada@example.org", to, subject
        message.set_content(body or "unsubscribe")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            return smtp.send_message(message)

    def send_raw(self, data: bytes) -> tuple[int, bytes]:
        """The DATA answer for bytes as they are, without smtplib's SIZE declaration."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.docmd("MAIL", "FROM:<ada@example.org>")[0] == 250
            assert smtp.docmd("RCPT", f"TO:<{ADDRESS}>")[0] == 250
            return smtp.data(data)


@pytest.fixture
def running(tmp_path) -> Iterator[Running]:
    server = Running(settings_for(tmp_path))
    yield server
    server.controller.stop()


@pytest.fixture
def token() -> str:
    return Tokens(KEY).make("unsubscribe", 7, "ada@example.org")


@pytest.mark.parametrize(
    "subject",
    ["unsubscribe {t}", "Re: unsubscribe {t}", "  unsubscribe \t  {t}  ", "RE: Fwd: {t} please",
     "unsubscribe%20{t}", "unsubscribe Story.about.Lyon {t}"],
)  # fmt: skip
def test_a_signed_token_anywhere_in_the_subject_is_handed_over(running, token, subject):
    assert running.send(subject.format(t=token)) == {}
    assert running.handed_over == [token]


def test_a_folded_or_encoded_subject_is_read_whole(running, token):
    folded = f"Subject: Re: unsubscribe\r\n {token}\r\n".encode()
    assert running.send_raw(folded + b"To: " + ADDRESS.encode() + b"\r\n\r\nx\r\n")[0] == 250
    encoded = Header(f"Ré: unsubscribe {token}", "utf-8").encode()
    assert encoded.startswith("=?utf-8?")
    assert running.send_raw(f"Subject: {encoded}\r\n\r\nx\r\n".encode())[0] == 250
    assert running.handed_over == [token, token]


def test_header_injection_in_the_subject_hands_over_the_token_alone(running, token):
    # An encoded word may carry CR LF; decoded, they are characters of the subject, which
    # the mailbox only searches for a token. Nothing of it is sent on or becomes a header.
    forged = Header(f"unsubscribe {token}\r\nBcc: victim@example.org\r\n\r\nbody", "utf-8")
    data = f"Subject: {forged.encode()}\r\nX-Other: {token}x\r\n\r\nx\r\n".encode()
    assert running.send_raw(data)[0] == 250
    # A second Subject line, as a client that let CR LF through the mailto would write it:
    # the first one counts.
    other = Tokens(KEY).make("unsubscribe", 8, "bob@example.org")
    data = f"Subject: unsubscribe {token}\r\nSubject: unsubscribe {other}\r\n\r\nx\r\n".encode()
    assert running.send_raw(data)[0] == 250
    assert running.handed_over == [token, token]


def test_only_the_unsubscribe_address_takes_mail(running, token):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        running.send(f"unsubscribe {token}", to="postmaster@sister.example")
    code, text = refused.value.recipients["postmaster@sister.example"]
    assert code == 550 and text.startswith(b"5.1.1")
    for elsewhere in ("unsubscribe@elsewhere.example", "unsubscribe+x@sister.example"):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            running.send(f"unsubscribe {token}", to=elsewhere)
    assert running.send(f"unsubscribe {token}", to="UnSubscribe@Sister.Example") == {}
    assert running.handed_over == [token]


def test_a_tampered_or_missing_token_is_accepted_and_dropped_without_a_trace_of_it(running, token):
    payload, stamp, signature = token.split(".")
    tampered = [
        f"{payload}.{stamp}.{signature[:5]}{'B' if signature[5] == 'A' else 'A'}{signature[6:]}",
        f"{Tokens(KEY).make('unsubscribe', 8, 'b@x.org').split('.')[0]}.{stamp}.{signature}",
        Tokens("another-key").make("unsubscribe", 7, "ada@example.org"),
        Tokens(KEY).make("preferences", 7, "ada@example.org"),  # another purpose
    ]
    with structlog.testing.capture_logs() as logs:
        for forged in tampered:
            assert running.send(f"unsubscribe {forged}") == {}  # 250, as for a good one
        assert running.send("unsubscribe") == {}
        assert running.send("") == {}
    assert running.handed_over == []
    assert [line["event"] for line in logs] == ["mail_unsubscribe_ignored"] * 6
    assert not any(forged in str(line) for line in logs for forged in tampered)


def test_an_oversized_message_is_refused(running, token):
    big = "x" * 70 + "\n"
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # declared with SIZE
        running.send(f"unsubscribe {token}", body=big * 1000)
    assert refused.value.smtp_code == 552
    undeclared = f"Subject: unsubscribe {token}\r\n\r\n".encode() + (b"x" * 70 + b"\r\n") * 1000
    assert running.send_raw(undeclared)[0] == 552
    assert running.handed_over == []


def test_a_broker_that_cannot_be_reached_gets_a_try_again_later(tmp_path, token):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = Running(settings_for(tmp_path, REDIS_URL=closed), through_the_broker=True)
    try:
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            server.send(f"unsubscribe {token}")
    finally:
        server.controller.stop()
    # The sending server keeps the mail and tries again: nothing is lost.
    assert deferred.value.smtp_code == 451
    assert deferred.value.smtp_error.startswith(b"4.3.0")
