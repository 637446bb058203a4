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
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates" / "email"
_LEADING_DOT = re.compile(rb"(?m)^\.")


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


def build_message(
    *,
    sender: str,
    recipient: str,
    rendered: Rendered,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
) -> bytes:
    """A multipart text + HTML message, CRLF line ends (as SMTP wants them), with RFC 8058
    one-click unsubscribe headers."""
    # The link goes in after encoding: the email package would turn a header line this long,
    # with no space to fold at, into an encoded word no mail client reads as a link.
    data = _compose(
        sender, recipient, rendered, message_id, UNSUBSCRIBE_HEADER_MARK, unsubscribe_mailto
    ).as_bytes()
    return data.replace(UNSUBSCRIBE_HEADER_MARK.encode(), unsubscribe_url.encode("ascii"), 1)


def _compose(
    sender: str,
    recipient: str,
    rendered: Rendered,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
    cte: str | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>, <{unsubscribe_mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text, cte=cte)
    message.add_alternative(rendered.html, subtype="html", cte=cte)
    return message


class MessageTemplate:
    """One digest, rendered and encoded once, for everyone who gets the same stories.

    The recipient, the Message-ID and the personal links stay as marks that ``fill`` replaces
    in the encoded bytes: a few string replacements instead of building a MIME message per
    subscriber (4 ms of CPU each). The bodies are quoted-printable, where the marks' characters
    stand for themselves; the templates keep each mark on a short line so the encoder never
    splits one, and the links put in are folded with soft line breaks, as the encoding wants.
    """

    def __init__(self, sender: str, rendered: Rendered, marks: tuple[str, ...], mailto: str):
        self.rendered = rendered
        self.mailto = mailto
        links = {mark: rendered.text.count(mark) + rendered.html.count(mark) for mark in marks}
        message = _compose(
            sender, RECIPIENT_MARK, rendered, MESSAGE_ID_MARK, UNSUBSCRIBE_HEADER_MARK, mailto,
            cte="quoted-printable",
        )  # fmt: skip
        self.data = message.as_bytes()
        # Every mark must have come through whole, or the fast path would send a broken link.
        self.usable = all(
            self.data.count(mark.encode()) == count for mark, count in links.items()
        ) and all(
            self.data.count(mark.encode()) == 1
            for mark in (RECIPIENT_MARK, MESSAGE_ID_MARK, UNSUBSCRIBE_HEADER_MARK)
        )

    def fill(self, recipient: str, message_id: str, unsubscribe_url: str, links: dict[str, str]):
        data = (
            self.data.replace(RECIPIENT_MARK.encode(), recipient.encode("ascii"), 1)
            .replace(MESSAGE_ID_MARK.encode(), message_id.encode("ascii"), 1)
            .replace(UNSUBSCRIBE_HEADER_MARK.encode(), unsubscribe_url.encode("ascii"), 1)
        )
        for mark, url in links.items():
            data = data.replace(mark.encode(), _soft_folded(url))
        return data


def _soft_folded(url: str, width: int = 72) -> bytes:
    """A link as quoted-printable lines: soft breaks ("=" CRLF) around and inside it, so no
    line grows past the encoding's 76 characters. Links here never hold "=" or non-ASCII."""
    raw = url.encode("ascii")
    return (
        b"=\r\n" + b"=\r\n".join(raw[i : i + width] for i in range(0, len(raw), width)) + b"=\r\n"
    )


def envelope_address(header_address: str) -> str:
    """The bare address of ``Name <user@host>``."""
    if "<" in header_address and header_address.endswith(">"):
        return header_address[header_address.rindex("<") + 1 : -1]
    return header_address


class SmtpSender:
    """One SMTP connection, opened on first use and reused until ``close``."""

    def __init__(self, url: str, timeout: float = 30.0):
        parts = urlsplit(url)
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
