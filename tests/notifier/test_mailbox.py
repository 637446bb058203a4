"""The unsubscribe mailbox, a real SMTP server on a free port spoken to with smtplib: mail to
unsubscribe@ with a validly signed token anywhere in its subject is handed over, and nothing
else; other recipients, oversized messages and a broker that is down get the SMTP answers
that make a sending server give up or retry; nobody learns who subscribes."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from email.header import Header
from email.message import EmailMessage

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier import mailbox
from services.notifier.config import load_mailbox_settings
from services.notifier.tokens import Tokens, purpose_key
from tests.notifier.conftest import KEY
from tests.stack import free_port

ADDRESS = "unsubscribe@sister.example"


def settings_for(tmp_path, **more):
    return load_mailbox_settings({
        "ENVIRONMENT": "test", "DATA_DIR": str(tmp_path),
        "UNSUBSCRIBE_KEY": purpose_key(KEY, "unsubscribe"),
        "MAIL_FROM": "Sister Cities <news@sister.example>", **more,
    })  # fmt: skip


class Running:
    """The mailbox in this process, its hand-overs recorded instead of sent (or sent through
    the broker of ``settings``)."""

    def __init__(self, settings, through_the_broker: bool = False):
        self.handed_over: list[str] = []  # unsubscribe tokens
        self.bounces: list[list] = []  # the arguments of notifier.record_bounce
        self.port = free_port()
        record = None if through_the_broker else self.record
        self.controller = mailbox.start(settings, "127.0.0.1", self.port, record)

    def record(self, task: str, args: list) -> None:
        if task == mailbox.TASK:
            (token,) = args
            self.handed_over.append(token)
        else:
            assert task == mailbox.BOUNCE_TASK
            self.bounces.append(args)

    def send(self, subject: str, to: str = ADDRESS, body: str = "") -> dict:
        """Send like a mail client following the mailto; smtplib raises on a refusal."""
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "ada@example.org", to, subject
        message.set_content(body or "unsubscribe")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            return smtp.send_message(message)

    def send_raw(self, data: bytes, timeout: float = 10) -> tuple[int, bytes]:
        """The DATA answer for bytes as they are, without smtplib's SIZE declaration."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=timeout) as smtp:
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
    big, lines = "x" * 70 + "\n", mailbox.MAX_MESSAGE_BYTES // 70
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # declared with SIZE
        running.send(f"unsubscribe {token}", body=big * lines)
    assert refused.value.smtp_code == 552
    undeclared = f"Subject: unsubscribe {token}\r\n\r\n".encode() + (b"x" * 70 + b"\r\n") * lines
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


def fastest(call, repeats: int = 3) -> float:
    """The least time of a few calls: the measure least disturbed by whatever else runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


# Runs that make a pattern searched anywhere backtrack over them: no dots, or one dot too few.
ADVERSARIAL_RUNS = [
    lambda size: "a" * size,
    lambda size: "a.b" + "c" * size,
    lambda size: "-" * size + ".",
    lambda size: "ab." * (size // 3),
]


@pytest.mark.parametrize("run", ADVERSARIAL_RUNS)
def test_finding_a_token_in_a_hostile_subject_grows_at_most_linearly(tokens, run):
    small, large = run(10_000), run(100_000)
    ratio = fastest(lambda: mailbox.token_in(large, tokens)) / fastest(
        lambda: mailbox.token_in(small, tokens)
    )
    assert ratio < 30  # ten times the text; a quadratic search takes a hundred times as long


@pytest.mark.parametrize("run", ADVERSARIAL_RUNS)
def test_the_token_finder_itself_is_linear_whatever_the_cap(run):
    small, large = run(10_000), run(100_000)
    ratio = fastest(lambda: mailbox.token_candidates(large)) / fastest(
        lambda: mailbox.token_candidates(small)
    )
    assert ratio < 30


def test_only_the_headers_are_parsed_and_only_the_start_of_the_subject_is_searched(token):
    body = b"Subject: not this one " + token.encode() + b"\r\n"
    message = f"Subject: unsubscribe {'x' * 5000}\r\n\r\n".encode() + body
    assert mailbox.headers_of(message).endswith(b"x\r\n")
    assert b"not this one" not in mailbox.headers_of(message)
    assert len(mailbox.subject_of(message)) == mailbox.MAX_SUBJECT_CHARS
    huge = b"X-Filler: " + b"y" * (2 * mailbox.MAX_HEADER_BYTES) + b"\r\n"
    assert len(mailbox.headers_of(huge + message)) == mailbox.MAX_HEADER_BYTES
    # A token past the start of the subject is not looked for; one at its start is found.
    late = f"unsubscribe {'x' * mailbox.MAX_SUBJECT_CHARS} {token}"
    assert mailbox.token_in(late, Tokens(KEY)) is None
    assert mailbox.token_in(f"unsubscribe {token} {'x' * 50_000}", Tokens(KEY)) == token


def hostile_subject(token: str) -> bytes:
    """A Subject of folded RFC 2047 encoded words that decodes to the token and then one run
    of 45,000 letters: 55 KiB, under the mailbox's size limit."""
    encoded = Header(f"unsubscribe {token} {'a' * 45_000}", "utf-8").encode(linesep="\r\n")
    return f"Subject: {encoded}\r\n\r\nx\r\n".encode()


class GatedTokens(Tokens):
    """Real tokens whose check waits until the test lets it go on, so the test can act while
    the mailbox is busy with a message."""

    def __init__(self, key: str):
        super().__init__(key)
        self.reading, self.go_on = threading.Event(), threading.Event()

    def read(self, purpose: str, token: str):
        self.reading.set()
        # Only a deadlock breaker for a mailbox that checks on its event loop: the test
        # fails on the order of answers, not on this wait.
        self.go_on.wait(timeout=20)
        return super().read(purpose, token)


def test_a_hostile_subject_does_not_keep_the_mailbox_from_answering_others(running, token):
    gated = running.controller.handler.tokens = GatedTokens(KEY)
    answers: list[str] = []
    data = hostile_subject(token)
    assert len(data) < mailbox.MAX_MESSAGE_BYTES

    def first_client() -> None:
        assert running.send_raw(data, timeout=120)[0] == 250
        answers.append("first: 250 for the hostile message")

    first = threading.Thread(target=first_client)
    first.start()
    assert gated.reading.wait(timeout=120), "the mailbox never got to the token"
    with smtplib.SMTP("127.0.0.1", running.port, timeout=120) as second:
        assert second.ehlo()[0] == 250
        assert second.noop()[0] == 250
        answers.append("second: EHLO and NOOP answered")
    gated.go_on.set()
    first.join()
    assert answers == ["second: EHLO and NOOP answered", "first: 250 for the hostile message"]
    assert running.handed_over == [token]


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.binary(max_size=300), max_size=8),
    subject=st.text(max_size=600),
    body=st.binary(max_size=200),
)
def test_any_message_gives_a_short_subject_or_none_and_no_forged_token(headers, subject, body):
    data = b"\r\n".join([*headers, b"Subject: " + subject.encode("utf-8", "replace")])
    data += b"\r\n\r\n" + body
    found = mailbox.subject_of(data)
    assert isinstance(found, str) and len(found) <= mailbox.MAX_SUBJECT_CHARS
    assert mailbox.token_in(found, Tokens(KEY)) is None


# Words without dots: a subject of more token-shaped words than MAX_CANDIDATES is not searched
# to its end, by design.
WORDS = st.text(st.characters(exclude_characters="."), max_size=200)


@settings(max_examples=200, deadline=None)
@given(before=WORDS, after=WORDS)
def test_a_good_token_is_found_between_any_words(before, after):
    token = Tokens(KEY).make("unsubscribe", 7, "ada@example.org")
    assert mailbox.token_in(f"{before} {token} {after}", Tokens(KEY)) == token
