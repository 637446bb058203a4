"""Bounces after the fact: signed VERP return paths, and the reports that come back to them.

Every message goes out with its own envelope sender, ``bounces+<signed id>@`` the mail domain:
the id names the subscriber and the message (a digest's ledger row, or a confirmation mail's
number), signed, so the bounce that comes back days later says whose address failed without
trusting anything the bouncing server wrote. The id is lowercase base32, short enough for a
local part (64 characters at most, RFC 5321) and unharmed by servers that change its case.

A report is read with the ``email`` package:

- a delivery status notification (RFC 3464, ``multipart/report; report-type=delivery-status``):
  ``Action: failed`` with a 5.x.x status is a hard bounce; a 4.x.x status or ``delayed`` is
  soft; anything else (delivered, relayed) is no bounce;
- a feedback-loop complaint (RFC 5965 ARF, ``report-type=feedback-report``): a complaint,
  unless its feedback type says otherwise (``not-spam``, ``auth-failure``). Complaints often
  come to a fixed address registered with the provider: the id is then read from the report's
  ``Original-Mail-From`` or the returned message's ``Return-Path``.

The key is derived from the unsubscribe mailbox's key: the mailbox checks bounce ids with the
key it already holds, and what the key allows (stop mail to a subscriber) is what an
unsubscribe token allows.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import hashlib
import hmac
import re
import struct
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.policy import default
from typing import NamedTuple

from shared.keys import derive_key

LOCAL_PART = "bounces"
HARD, SOFT, COMPLAINT = "hard", "soft", "complaint"
# The message an id names: a digest's or a campaign's ledger row, a confirmation mail's
# number, or the second a follow or preferences link mail was made.
MESSAGE_KINDS = {1: "digest", 2: "confirm", 3: "follow", 4: "preferences", 5: "campaign"}
_KIND_CODES = {name: code for code, name in MESSAGE_KINDS.items()}
_PAYLOAD = struct.Struct(">BII")
MAC_BYTES = 10  # 80 bits: a forger gets one guess per mail sent to us
ID_CHARS = -(-(_PAYLOAD.size + MAC_BYTES) * 8 // 5)  # base32 without its padding
MAX_REASON_CHARS = 300
# Complaint types that are no complaint: a report of mail wrongly taken for spam, and a
# failed-authentication report (RFC 6591) about mail someone else sent in our name.
NOT_COMPLAINTS = ("not-spam", "auth-failure")
_STATUS = re.compile(r"^\s*([245])\.\d{1,3}\.\d{1,3}")
_PARSER = BytesParser(policy=default)


class Bounced(NamedTuple):
    """What a signed id says."""

    subscriber_id: int
    message_kind: str
    message_number: int


class Report(NamedTuple):
    """What a report says: hard, soft or complaint, a reason for the log and the record, and
    the return paths it names (for a complaint sent to a fixed address)."""

    kind: str
    reason: str
    return_paths: tuple[str, ...] = ()


def bounce_key(unsubscribe_key: str) -> str:
    return derive_key(unsubscribe_key, "mail-token.bounce")


class BounceIds:
    """Makes and checks the signed ids of return paths."""

    def __init__(self, key: str):
        self._key = key.encode()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def make(self, subscriber_id: int, message_kind: str, message_number: int) -> str:
        payload = _PAYLOAD.pack(_KIND_CODES[message_kind], subscriber_id, message_number)
        return _encoded(payload + self._mac(payload))

    def read(self, bounce_id: str) -> Bounced | None:
        """What a validly signed id names; None for anything else."""
        if not isinstance(bounce_id, str) or len(bounce_id) != ID_CHARS:
            return None
        try:
            raw = base64.b32decode(bounce_id.upper() + "=" * (-len(bounce_id) % 8))
        except (binascii.Error, ValueError):
            return None
        if _encoded(raw) != bounce_id.lower():
            return None  # the last letter's spare bits set: one id, one spelling
        payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        code, subscriber_id, number = _PAYLOAD.unpack(payload)
        if code not in MESSAGE_KINDS:
            return None
        return Bounced(subscriber_id, MESSAGE_KINDS[code], number)

    def return_path(self, domain: str, *named) -> str:
        return f"{LOCAL_PART}+{self.make(*named)}@{domain}"


def _encoded(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def is_bounce_address(address: str, domain: str) -> bool:
    """``bounces@`` or ``bounces+<anything>@`` the mail domain (checked later, not here)."""
    local, _, at = address.lower().rpartition("@")
    return at == domain.lower() and (local == LOCAL_PART or local.startswith(f"{LOCAL_PART}+"))


def id_of(address: str) -> str | None:
    """The id in a return path, lowercased; None for an address without one."""
    local = address.rpartition("@")[0].lower()
    return local.removeprefix(f"{LOCAL_PART}+") if local.startswith(f"{LOCAL_PART}+") else None


def read_report(data: bytes) -> Report | None:
    """The bounce or complaint a message reports; None for any other mail (an auto-reply, a
    bounce in no standard format, something unreadable)."""
    try:
        message = _PARSER.parsebytes(data)
        if message.get_content_type() != "multipart/report":
            return None
        report_type = str(message.get_param("report-type", "")).lower()
        if report_type == "delivery-status":
            return _delivery_status(message)
        if report_type == "feedback-report":
            return _feedback(message)
    except (email.errors.MessageError, ValueError, LookupError, TypeError, AttributeError):
        return None
    return None


def _bare_address(path: str) -> str | None:
    """The address of a Return-Path or Original-Mail-From ("<bounces+id@domain>"), read with
    string methods: a hostile header must not cost more than one pass over it."""
    text = path.strip()
    text = text.removeprefix("<").removesuffix(">").strip()
    at = text.find("@", 1)
    if at < 0 or at == len(text) - 1 or any(char in "<>" or char.isspace() for char in text):
        return None
    return text


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _fields(part: Message) -> list[Message]:
    """The field blocks of a report part. The parser splits ``message/delivery-status`` into
    blocks itself; other report parts arrive as text and are read as one block of headers."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    text = part.get_payload(decode=True) or b""
    return [HeaderParser(policy=default).parsestr(text.decode("ascii", "replace"))]


def _delivery_status(message: EmailMessage) -> Report | None:
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        return None
    worst: Report | None = None
    for recipient in _fields(status_part)[1:]:  # the first block is about the message
        action = str(recipient.get("Action", "")).strip().lower()
        status = str(recipient.get("Status", "")).strip()
        matched = _STATUS.match(status)
        diagnostic = " ".join(str(recipient.get("Diagnostic-Code", "")).split())
        reason = " ".join(f"{action} {status} {diagnostic}".split())[:MAX_REASON_CHARS]
        if action == "failed" and matched and matched.group(1) == "5":
            return Report(HARD, reason)
        if action == "delayed" or (action == "failed" and matched):
            worst = worst or Report(SOFT, reason)
    return worst


def _feedback(message: EmailMessage) -> Report | None:
    feedback_part = _part(message, "message/feedback-report")
    if feedback_part is None:
        return None
    blocks = _fields(feedback_part)
    fields = blocks[0] if blocks else Message()
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if not feedback_type or feedback_type in NOT_COMPLAINTS:
        return None
    paths = [str(fields.get("Original-Mail-From", ""))]
    returned = _part(message, "message/rfc822")
    if returned is not None and isinstance(returned.get_payload(), list):
        paths.append(str(returned.get_payload()[0].get("Return-Path", "")))
    headers = _part(message, "text/rfc822-headers")
    if headers is not None:
        paths.append(str(_fields(headers)[0].get("Return-Path", "")))
    found = tuple(address for path in paths if (address := _bare_address(path)))
    return Report(COMPLAINT, f"complaint: {feedback_type}"[:MAX_REASON_CHARS], found)
