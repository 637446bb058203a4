"""Where mail goes, chosen by ``MAIL_BACKEND``: an SMTP server (``smtp``), the worker's
standard output (``console``), one ``.eml`` file a message under ``MAIL_FILE_DIR`` (``file``)
or nowhere (``null``). Each sender signs a message (DKIM, when a key is configured) before
anything of it goes out, keeps one connection or folder for a batch, and tells temporary
failures (retry later) from permanent ones (this address is bad).

Every sender runs the caller's ``before_last_line`` step at the last moment the message can
still be abandoned: for SMTP just before the lone "." that makes the server accept it (if the
connection dies before it, the server drops the message), for a file just before the file
takes its final name. The step returns a function the sender calls right after that last
line, whatever became of it. The digest ledger records "sent" in that step and gets the
answer to its COMMIT in the function (``ledger.py``), so a crash on either side of the last
line sends a digest at most once, and nothing but the two writes sits between the mark and
the last line.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import ssl
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlsplit

from services.notifier.mail import DkimSigner

# Run just before a message's last line; what it returns, just after.
BeforeLastLine = Callable[[], Callable[[], None]]

BACKENDS = ("smtp", "console", "file", "null")
_LEADING_DOT = re.compile(rb"(?m)^\.")


class TemporaryFailure(Exception):
    """4xx, or the server could not be reached: try again later."""


class ServerUnavailable(TemporaryFailure):
    """The server could not be reached or the connection broke: nothing to do with the
    recipient, and every later message would fail the same way."""


class PermanentFailure(Exception):
    """5xx for this recipient: the address will not take mail."""


class Sender:
    """What every backend does; a backend writes ``_deliver``."""

    def __init__(self, signer: DkimSigner | None = None):
        self.signer = signer

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_last_line: BeforeLastLine | None = None,
    ) -> None:
        """Send ``data`` from the envelope sender ``sender`` (the VERP return path) to
        ``recipient``."""
        if self.signer is not None:
            data = self.signer.sign(data)  # before anything goes out: a failure sends nothing
        self._deliver(sender, recipient, data, before_last_line)

    def _deliver(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_last_line: BeforeLastLine | None,
    ) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """The end of a batch."""


def open_sender(
    backend: str, *, smtp_url: str, directory: Path, signer: DkimSigner | None = None
) -> Sender:
    """The sender ``MAIL_BACKEND`` names (the settings checked the name at start-up)."""
    if backend == "smtp":
        return SmtpSender(smtp_url, signer=signer)
    if backend == "console":
        return ConsoleSender(signer=signer)
    if backend == "file":
        return FileSender(directory, signer=signer)
    if backend == "null":
        return NullSender()
    raise ValueError(f"no mail backend {backend!r}: one of {', '.join(BACKENDS)}")


def _at_last_line(before_last_line: BeforeLastLine | None, last_line: Callable[[], None]) -> None:
    """The caller's step, the last line at once, then the step's own ending, even when the
    last line failed (a database connection must not be left waiting for an answer)."""
    if before_last_line is None:
        last_line()
        return
    after_last_line = before_last_line()
    try:
        last_line()
    finally:
        after_last_line()


def _delivered(sender: str, data: bytes) -> bytes:
    """The message as a mailbox would hold it: the envelope sender in ``Return-Path``, as
    the final delivery adds it (outside the DKIM signature, which does not cover it)."""
    return b"Return-Path: <" + sender.encode("ascii") + b">\r\n" + data


class SmtpSender(Sender):
    """One SMTP connection, opened on first use and reused until ``close``."""

    def __init__(self, url: str, timeout: float = 30.0, signer: DkimSigner | None = None):
        super().__init__(signer)
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None

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
            # algorithm holds the last one until the server's delayed ACK.
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

    def _deliver(self, sender, recipient, data, before_last_line) -> None:
        connection = self._connect()
        try:
            # Addresses are plain ASCII, checked when they were stored: no quoting to do.
            self._expect(connection.docmd("MAIL", f"FROM:<{sender}>"), recipient, "MAIL FROM")
            self._expect(connection.docmd("RCPT", f"TO:<{recipient}>"), recipient, "RCPT TO")
            self._expect(connection.docmd("DATA"), recipient, "DATA", wanted=354)
            body = _LEADING_DOT.sub(b"..", data)
            connection.send(body if body.endswith(b"\r\n") else body + b"\r\n")
            _at_last_line(before_last_line, lambda: connection.send(b".\r\n"))
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


class ConsoleSender(Sender):
    """Each message printed whole, for development. Celery redirects a worker's
    ``sys.stdout`` into its log, one line a log record, so the process's own standard output
    is the default."""

    _lock = threading.Lock()  # a worker's threads print whole messages, not interleaved lines

    def __init__(self, stream: TextIO | None = None, signer: DkimSigner | None = None):
        super().__init__(signer)
        self.stream = stream

    def _deliver(self, sender, recipient, data, before_last_line) -> None:
        _at_last_line(before_last_line, lambda: None)
        text = _delivered(sender, data).decode("utf-8", "replace").replace("\r\n", "\n")
        stream = self.stream or sys.__stdout__
        with self._lock:
            stream.write(f"{'-' * 30} mail to {recipient} {'-' * 30}\n{text}\n")
            stream.flush()


class FileSender(Sender):
    """Each message an ``.eml`` file in one folder (``MAIL_FILE_DIR``, where the development
    mail catcher keeps what it catches): written under a temporary name, then renamed, so a
    reader never sees half a message, and the rename is the message's "last line"."""

    def __init__(self, directory: Path, signer: DkimSigner | None = None):
        super().__init__(signer)
        self.directory = directory

    def _deliver(self, sender, recipient, data, before_last_line) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        partial = path.with_name(f".{path.name}.part")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(_delivered(sender, data))
        except OSError as error:
            raise ServerUnavailable(f"the mail folder cannot be written ({error})") from None
        try:
            _at_last_line(before_last_line, lambda: os.replace(partial, path))
        except OSError as error:
            raise ServerUnavailable(f"the mail folder cannot be written ({error})") from None
        finally:
            partial.unlink(missing_ok=True)


class NullSender(Sender):
    """Nothing goes anywhere: the ledger still records each digest as sent. For load tests
    of everything but the mail server, and for deployments that must not mail anyone."""

    def _deliver(self, sender, recipient, data, before_last_line) -> None:
        _at_last_line(before_last_line, lambda: None)
