"""Mail: templates rendered into text + HTML messages, and an SMTP sender that keeps one
connection for a batch and tells temporary failures (retry later) from permanent ones (this
address is bad) apart.

The sender can run a step just before the message's last line (the lone "."): the server
accepts a message only on that line, and if the connection dies before it the server drops
the message. The digest ledger uses that step to record "sent" while the message can still be
abandoned (see ``deliveries.py``).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import dkim
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates" / "email"
_LEADING_DOT = re.compile(rb"(?m)^\.")
_ANY_MARK = re.compile(rb"(%%[a-z_]+%%)")


class TemporaryFailure(Exception):
    """4xx, or the server could not be reached: try again later."""


class ServerUnavailable(TemporaryFailure):
    """The server could not be reached or the connection broke: nothing to do with the
    recipient, and every later message would fail the same way."""


class PermanentFailure(Exception):
    """5xx for this recipient: the address will not take mail."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **context) -> Rendered:
    """``templates/email/<name>/subject.txt, body.txt, body.html``."""
    subject = _environment.get_template(f"{name}/subject.txt").render(**context)
    return Rendered(
        subject=" ".join(subject.split())[:250],  # one line, whatever went into it
        text=_environment.get_template(f"{name}/body.txt").render(**context),
        html=_environment.get_template(f"{name}/body.html").render(**context),
    )


RECIPIENT_MARK = "%%recipient%%"
MESSAGE_ID_MARK = "%%message_id%%"
UNSUBSCRIBE_HEADER_MARK = "%%unsubscribe_header%%"
UNSUBSCRIBE_LOCAL_PART = "unsubscribe"


def unsubscribe_address(sender: str) -> str:
    """The mailbox that takes unsubscribe mail: ``unsubscribe@`` the sender's domain."""
    return f"{UNSUBSCRIBE_LOCAL_PART}@{envelope_address(sender).rsplit('@', 1)[-1]}"


def unsubscribe_mailto(address: str, token: str) -> str:
    """RFC 6068: the subject carries the signed token, which tells the mailbox who asked
    without trusting the From line. Percent-encoded, though URL-safe tokens pass unchanged."""
    return f"mailto:{address}?subject=unsubscribe%20{quote(token, safe='')}"


def list_unsubscribe(url: str, mailto: str) -> str:
    """The ``List-Unsubscribe`` value: the one-click link first (RFC 8058), then the mailto."""
    return f"<{url}>, <{mailto}>"


def list_id(sender: str) -> str:
    """RFC 2919: the digests are one list, named under the mail domain, so mail clients and
    filters can tell them from other mail of the same sender."""
    return f"Sister Cities digests <digests.{envelope_address(sender).rsplit('@', 1)[-1]}>"


def feedback_id(kind: str, period: str) -> str:
    """Gmail's Feedback-ID: complaints are reported per value, so each kind of mail (and each
    digest frequency) is counted apart; the sender's name comes last, as the format wants."""
    return f"{kind}:{period}:sistercities"


@dataclass(frozen=True)
class ListHeaders:
    """What tells one kind of mail from another to the receiving side: the Feedback-ID, and
    for list mail (the digests) its List-Id."""

    feedback_id: str
    list_id: str | None = None


def build_message(
    *,
    sender: str,
    recipient: str,
    rendered: Rendered,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
    headers: ListHeaders,
) -> bytes:
    """A multipart text + HTML message, CRLF line ends (as SMTP wants them), with RFC 8058
    one-click unsubscribe headers."""
    # The links go in after encoding: the email package would turn a header line this long,
    # with no space to fold at, into an encoded word no mail client reads as a link.
    data = _compose(sender, recipient, rendered, message_id, headers).as_bytes()
    header = list_unsubscribe(unsubscribe_url, unsubscribe_mailto)
    return data.replace(UNSUBSCRIBE_HEADER_MARK.encode(), header.encode("ascii"), 1)


def _compose(
    sender: str,
    recipient: str,
    rendered: Rendered,
    message_id: str,
    headers: ListHeaders,
    cte: str | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = UNSUBSCRIBE_HEADER_MARK  # the whole value, personal
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if headers.list_id is not None:
        message["List-Id"] = headers.list_id
    message["Feedback-ID"] = headers.feedback_id
    message.set_content(rendered.text, cte=cte)
    message.add_alternative(rendered.html, subtype="html", cte=cte)
    return message


class MessageTemplate:
    """One digest, rendered and encoded once, for everyone who gets the same stories.

    The recipient, the Message-ID, the ``List-Unsubscribe`` value (its link and mailto both
    carry the subscriber's token) and the personal links in the bodies stay as marks that
    ``fill`` replaces in the encoded bytes: one join of the pieces between the marks instead
    of building a MIME message per subscriber (4 ms of CPU each). The bodies are
    quoted-printable, where the marks' characters stand for themselves; the templates keep each
    mark on a short line so the encoder never splits one, and the links put in are folded with
    soft line breaks, as the encoding wants.
    """

    def __init__(
        self, sender: str, rendered: Rendered, marks: tuple[str, ...], headers: ListHeaders
    ):
        self.rendered = rendered
        self.headers = headers
        message = _compose(
            sender, RECIPIENT_MARK, rendered, MESSAGE_ID_MARK, headers, "quoted-printable"
        )
        self.data = message.as_bytes()
        # The message cut at its marks ("%%name%%"), and where each mark sits among the pieces.
        self._pieces = _ANY_MARK.split(self.data)
        expected = Counter({RECIPIENT_MARK: 1, MESSAGE_ID_MARK: 1, UNSUBSCRIBE_HEADER_MARK: 1})
        for mark in marks:
            if not _ANY_MARK.fullmatch(mark.encode()):
                raise ValueError(f"a mark is written %%name%%, not {mark!r}")
            expected[mark] = rendered.text.count(mark) + rendered.html.count(mark)
        self._slots = [
            (index, mark)
            for index in range(1, len(self._pieces), 2)
            if (mark := self._pieces[index].decode()) in expected
        ]
        # Every mark must have come through whole, or the fast path would send a broken link;
        # the header's mark must be its whole value, on one line.
        whole_header = f"\r\nList-Unsubscribe: {UNSUBSCRIBE_HEADER_MARK}\r\n".encode()
        self.usable = (
            Counter(mark for _index, mark in self._slots) == +expected
            and all(self.data.count(mark.encode()) == n for mark, n in expected.items())
            and whole_header in self.data
        )

    def fill(
        self, recipient: str, message_id: str, unsubscribe_header: str, links: dict[str, str]
    ) -> bytes:
        values = {
            RECIPIENT_MARK: recipient.encode("ascii"),
            MESSAGE_ID_MARK: message_id.encode("ascii"),
            UNSUBSCRIBE_HEADER_MARK: unsubscribe_header.encode("ascii"),
            **{mark: _soft_folded(url) for mark, url in links.items()},
        }
        # It runs once per subscriber: one copy of the message, where a replace per mark
        # made one each (13 µs a message down to 5).
        pieces = self._pieces.copy()
        for index, mark in self._slots:
            pieces[index] = values[mark]
        return b"".join(pieces)


def _soft_folded(url: str, width: int = 72) -> bytes:
    """A link as quoted-printable lines: soft breaks ("=" CRLF) around and inside it, so no
    line grows past the encoding's 76 characters. Links here never hold "=" or non-ASCII."""
    raw = url.encode("ascii")
    return (
        b"=\r\n" + b"=\r\n".join(raw[i : i + width] for i in range(0, len(raw), width)) + b"=\r\n"
    )


# What the signature covers: the headers a receiver shows or acts on (List-Unsubscribe above
# all: a forged one-click link must break the signature) and the body's structure.
DKIM_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id",
                b"mime-version", b"content-type")  # fmt: skip


class DkimSigner:
    """Signs each finished message (RFC 6376, relaxed/relaxed, rsa-sha256) as ``d=`` the
    sender's domain. It runs on the final bytes, after a digest's template is filled in:
    every subscriber's message differs, so no signature can be made once per template."""

    def __init__(self, private_key: bytes, selector: str, domain: str):
        self.private_key = private_key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")

    def sign(self, data: bytes) -> bytes:
        header = dkim.sign(
            data,
            self.selector,
            self.domain,
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(DKIM_HEADERS),
            linesep=b"\r\n",
        )
        return header + data


def envelope_address(header_address: str) -> str:
    """The bare address of ``Name <user@host>``."""
    if "<" in header_address and header_address.endswith(">"):
        return header_address[header_address.rindex("<") + 1 : -1]
    return header_address


class SmtpSender:
    """One SMTP connection, opened on first use and reused until ``close``."""

    def __init__(self, url: str, timeout: float = 30.0, signer: DkimSigner | None = None):
        parts = urlsplit(url)
        self.signer = signer
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        try:
            if self.scheme == "smtps":
                connection = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.scheme == "smtp+starttls":
                    connection.starttls(context=ssl.create_default_context())
            # The message and its last line go as separate writes: without this, Nagle's
            # algorithm holds the last one until the server's delayed ACK (40 ms a message).
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.ehlo_or_helo_if_needed()
            if self.user:
                connection.login(self.user, self.password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise PermanentFailure(
                f"the mail server refused our login ({error.smtp_code})"
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise ServerUnavailable(f"the mail server cannot be reached ({error})") from None
        self._connection = connection
        return connection

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_last_line: Callable[[], None] | None = None,
    ) -> None:
        if self.signer is not None:
            data = self.signer.sign(data)  # before MAIL FROM: a failure here sends nothing
        connection = self._connect()
        try:
            # Addresses are plain ASCII, checked when they were stored: no quoting to do.
            self._expect(connection.docmd("MAIL", f"FROM:<{sender}>"), recipient, "MAIL FROM")
            self._expect(connection.docmd("RCPT", f"TO:<{recipient}>"), recipient, "RCPT TO")
            self._expect(connection.docmd("DATA"), recipient, "DATA", wanted=354)
            body = _LEADING_DOT.sub(b"..", data)
            connection.send(body if body.endswith(b"\r\n") else body + b"\r\n")
            if before_last_line is not None:
                before_last_line()
            connection.send(b".\r\n")
            self._expect(connection.getreply(), recipient, "end of DATA")
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            raise ServerUnavailable(f"the connection to the mail server broke ({error})") from None
        except (TemporaryFailure, PermanentFailure):
            self._reset()
            raise
        except BaseException:
            self._drop()  # mid-DATA: closing makes the server drop the message
            raise

    def _expect(self, reply: tuple[int, bytes], recipient: str, step: str, wanted: int = 250):
        code, message = reply
        if code == wanted or (wanted == 250 and code == 251):
            return
        text = message.decode("utf-8", "replace")[:300]
        if 500 <= code < 600:
            raise PermanentFailure(f"{step} for {recipient}: {code} {text}")
        raise TemporaryFailure(f"{step} for {recipient}: {code} {text}")

    def _reset(self) -> None:
        try:
            if self._connection is not None:
                self._connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._connection.quit()
            self._drop()
