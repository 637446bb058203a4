"""The unsubscribe mailbox: a small SMTP server for mail to ``unsubscribe@`` the domain of
MAIL_FROM, the address of the mailto in every message's List-Unsubscribe (RFC 2369), as a
list server keeps one; and for the bounces and complaints that come back to the return path
of every message, ``bounces+<signed id>@`` that domain (``bounces.py``).

The mailto's subject carries the subscriber's signed unsubscribe token
(``mail.unsubscribe_mailto``), so the From line, which anyone can write, is never trusted. The
mailbox reads only the headers, checks the token's signature and hands a good token to the
notifier's worker (``notifier.unsubscribe_by_mail``); it never opens the database. Answers:

- RCPT to any other address: 550 5.1.1 (it relays nothing, and keeps no other mailbox);
- a message over ``MAX_MESSAGE_BYTES``: 552 (a bounce may return the digest it is about);
- the broker cannot be reached: 451 4.3.0, and the sending server keeps the mail and retries;
- no token, or one that is not valid: 250 all the same, so nobody learns who subscribes; the
  log says why, never with the token.

A bounce (RFC 3464) or complaint (RFC 5965) whose return path carries a validly signed id is
handed to the worker as ``notifier.record_bounce``; a forged or missing id, or a message that
reports nothing, gets 250 all the same and changes nothing (logged, without the id).

Every message is read in a thread of its own, never on the event loop, and only so much of it
as an honest request needs (the headers, the start of the subject): one hostile message must
not keep the server from answering the others.
"""

from __future__ import annotations

import asyncio
import email.errors
import logging
import re
import signal
import threading
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import default
from urllib.parse import unquote

from aiosmtpd.controller import Controller

from services.notifier import bounces, mail
from services.notifier.bounces import BounceIds
from services.notifier.config import MailboxSettings
from services.notifier.tokens import MAX_TOKEN_CHARS, TokenReader, unsubscribe_checker
from shared.celery_app import RETRYABLE_ERRORS, make_celery
from shared.errors import InvalidInput
from shared.logs import get_logger

log = get_logger(__name__)

TASK = "notifier.unsubscribe_by_mail"
BOUNCE_TASK = "notifier.record_bounce"
# A bounce may return the whole digest it is about; an unsubscribe request is a few hundred
# bytes, and only its headers are read.
MAX_MESSAGE_BYTES = 256 * 1024
# Relays prepend Received, DKIM and ARC lines, a few KiB at most; the rest is not parsed.
MAX_HEADER_BYTES = 32 * 1024
# "Re: unsubscribe <token>", with room for a client's additions; a token is shorter.
MAX_SUBJECT_CHARS = 2 * MAX_TOKEN_CHARS
MAX_CANDIDATES = 5
# Whatever cannot be part of a token splits the subject into words, each checked whole: one
# pass over the text, where a pattern searched anywhere in a long run backtracks over it.
_NOT_IN_A_TOKEN = re.compile(r"[^A-Za-z0-9_.-]+")
_HEADERS = BytesHeaderParser(policy=default)


def headers_of(data: bytes) -> bytes:
    """The message up to the blank line that ends its headers, and no more than the cap."""
    head = data[:MAX_HEADER_BYTES]
    ends = [end for end in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if end >= 0]
    return head[: min(ends)] + b"\r\n" if ends else head


def subject_of(data: bytes) -> str:
    """The start of the Subject, unfolded and decoded (RFC 2047 encoded words); the body is
    never parsed."""
    try:
        subject = _HEADERS.parsebytes(headers_of(data)).get("Subject", "")
        return str(subject)[:MAX_SUBJECT_CHARS]
    except (email.errors.MessageError, ValueError, LookupError):
        return ""


def token_candidates(text: str) -> list[str]:
    """Words of ``text`` shaped like an itsdangerous token: payload, timestamp and signature,
    URL-safe base64 joined by two dots (a sentence's full stop around it is dropped)."""
    candidates = []
    for word in _NOT_IN_A_TOKEN.split(text):
        word = word.strip(".")
        if len(word) <= MAX_TOKEN_CHARS and word.count(".") == 2 and ".." not in word:
            candidates.append(word)
    return candidates


def token_in(subject: str, tokens: TokenReader) -> str | None:
    """The first validly signed unsubscribe token anywhere in the subject ("Re:", other words
    and spaces around it are fine; so is a subject some client left percent-encoded)."""
    subject = subject[:MAX_SUBJECT_CHARS]
    candidates = token_candidates(subject) + token_candidates(unquote(subject))
    for candidate in candidates[:MAX_CANDIDATES]:
        try:
            tokens.read("unsubscribe", candidate)
        except InvalidInput:
            continue
        return candidate
    return None


HandOver = Callable[[str, list], None]  # (task name, its arguments)


class UnsubscribeMailbox:
    """aiosmtpd's handler: which recipients it takes, and what it does with a message."""

    def __init__(
        self, address: str, tokens: TokenReader, hand_over: HandOver, bounce_ids: BounceIds
    ):
        self.address = address.lower()
        self.domain = self.address.rsplit("@", 1)[1]
        self.tokens = tokens
        self.hand_over = hand_over
        self.bounce_ids = bounce_ids

    async def handle_RCPT(self, _server, _session, envelope, address: str, _options) -> str:
        # Local parts are case-sensitive by the letter of RFC 5321; every real server ignores it.
        if address.lower() != self.address and not bounces.is_bounce_address(address, self.domain):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def token_of(self, data: bytes) -> str | None:
        return token_in(subject_of(data), self.tokens)

    def bounce_of(self, data: bytes, recipients: list[str]) -> tuple[list, str | None]:
        """The task arguments of a report whose return path holds a signed id, or None and
        why not."""
        report = bounces.read_report(data)
        if report is None:
            return [], "no delivery status or complaint report"
        addresses = [*recipients, *report.return_paths]
        for bounce_id in filter(None, map(bounces.id_of, addresses)):
            if self.bounce_ids.read(bounce_id) is not None:
                return [bounce_id, report.kind, report.reason], None
        return [], "no validly signed id in the return path"

    async def handle_DATA(self, _server, _session, envelope) -> str:
        data = envelope.original_content or envelope.content
        if any(bounces.is_bounce_address(rcpt, self.domain) for rcpt in envelope.rcpt_tos):
            return await self.bounce(data, list(envelope.rcpt_tos))
        # Parsing, decoding and signature checks are CPU work: the loop serves other clients.
        token = await asyncio.to_thread(self.token_of, data)
        if token is None:
            log.info("mail_unsubscribe_ignored", reason="no validly signed token in the subject")
            return "250 2.0.0 OK"
        return await self.handed_over(TASK, [token], "mail_unsubscribe")

    async def bounce(self, data: bytes, recipients: list[str]) -> str:
        args, why_not = await asyncio.to_thread(self.bounce_of, data, recipients)
        if why_not is not None:
            log.info("mail_bounce_ignored", reason=why_not)
            return "250 2.0.0 OK"
        return await self.handed_over(BOUNCE_TASK, args, "mail_bounce", kind=args[1])

    async def handed_over(self, task: str, args: list, event: str, **logged) -> str:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.hand_over, task, args)
        except RETRYABLE_ERRORS as error:
            log.warning(f"{event}_deferred", error=type(error).__name__)
            return "451 4.3.0 Try again later"
        log.info(f"{event}_handed_over", **logged)
        return "250 2.0.0 OK"


def celery_hand_over(settings: MailboxSettings) -> HandOver:
    """Send the task to the notifier's worker; raises when the broker cannot be reached (after
    a short retry: the SMTP client is waiting for its answer)."""
    app = make_celery("notifier-mailbox", settings)
    app.conf.broker_transport_options.update(socket_connect_timeout=2, socket_timeout=5)
    policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}

    def hand_over(task: str, args: list) -> None:
        app.send_task(task, args=args, retry_policy=policy)

    return hand_over


class _WithoutPeers(logging.Filter):
    """aiosmtpd names the client's address in its lines; this process logs no addresses."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple("(peer)" if isinstance(a, tuple) else a for a in record.args)
        return True


def start(
    settings: MailboxSettings,
    host: str,
    port: int,
    hand_over: HandOver | None = None,
) -> Controller:
    """The mailbox listening on host:port, in a thread of this process."""
    logging.getLogger("mail.log").addFilter(_WithoutPeers())
    mailbox = UnsubscribeMailbox(
        mail.unsubscribe_address(settings.mail_from),
        unsubscribe_checker(settings.checking_key()),
        hand_over or celery_hand_over(settings),
        BounceIds(bounces.bounce_key(settings.checking_key())),
    )
    controller = Controller(
        mailbox,
        hostname=host,
        port=port,
        server_hostname=mailbox.address.rsplit("@", 1)[1],
        data_size_limit=MAX_MESSAGE_BYTES,
        timeout=60,
        ready_timeout=10,
    )
    controller.start()
    return controller


def serve(settings: MailboxSettings, host: str, port: int) -> None:
    controller = start(settings, host, port)
    log.info("mailbox_listening", host=host, port=port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    log.info("mailbox_stopped")
