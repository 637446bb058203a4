"""What a message is made of: templates rendered into text + HTML, composed with the headers
that tell our mail apart (List-Unsubscribe, List-Id, Feedback-ID), a digest's message encoded
once and filled in per subscriber, and the DKIM signature of each finished message. Which
mail is sent with what is ``emails.py``'s; where it goes is ``senders.py``'s."""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates" / "email"
_ANY_MARK = re.compile(rb"(%%[a-z_]+%%)")


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


def list_id(sender: str, name: str = "digests") -> str:
    """RFC 2919: the digests are one list and the announcements (campaigns) another, each
    named under the mail domain, so mail clients and filters can tell them from other mail
    of the same sender."""
    return f"Sister Cities {name} <{name}.{envelope_address(sender).rsplit('@', 1)[-1]}>"


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


def build_notice(
    *, sender: str, recipient: str, rendered: Rendered, message_id: str, headers: ListHeaders
) -> bytes:
    """A message to one person about their own account (a staff member's sign-in link): no
    list, so nothing to unsubscribe from."""
    return _compose(sender, recipient, rendered, message_id, headers, list_mail=False).as_bytes()


def _compose(
    sender: str,
    recipient: str,
    rendered: Rendered,
    message_id: str,
    headers: ListHeaders,
    cte: str | None = None,
    list_mail: bool = True,
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    if list_mail:
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
    of building a MIME message per subscriber, the costliest step by far. The bodies are
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
        # It runs once per subscriber: one copy of the message (a replace per mark would
        # copy it once a mark).
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
DKIM_HEADERS = (
    *(b"from", b"to", b"subject", b"date", b"message-id"),
    *(b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id"),
    *(b"mime-version", b"content-type"),
)


class DkimSigner:
    """Signs each finished message (RFC 6376, relaxed/relaxed, rsa-sha256) as ``d=`` the
    sender's domain. It runs on the final bytes, after a digest's template is filled in:
    every subscriber's message differs, so no signature can be made once per template.

    dkimpy canonicalizes and hashes; the RSA operation, which its pure-Python arithmetic made
    nine tenths of a message's cost, is OpenSSL's (``openssl_rsassa_sign``), with the key
    loaded once per process."""

    def __init__(self, private_key: bytes, selector: str, domain: str):
        self.private_key = private_key
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        # dkimpy calls this name from DKIM.gen_header and offers no other way in. PKCS #1
        # v1.5 signatures are deterministic, so the result is byte for byte dkimpy's own
        # (tests/notifier/test_mail.py compares them, and fails if the name goes away).
        dkim.RSASSA_PKCS1_v1_5_sign = openssl_rsassa_sign

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


_OPENSSL_HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
# The order of the numbers in dkimpy's parsed key and in RSAPrivateNumbers' arguments.
_KEY_NUMBERS = (
    *("modulus", "publicExponent", "privateExponent"),
    *("prime1", "prime2", "exponent1", "exponent2", "coefficient"),
)


def openssl_rsassa_sign(digest, private_key: dict) -> bytes:
    """dkimpy's ``RSASSA_PKCS1_v1_5_sign(hash, private_key)`` (RFC 8017 RSASSA-PKCS1-v1_5 of
    a hash object, with the key as dkimpy parses it), done by OpenSSL."""
    key = _openssl_key(tuple(private_key[name] for name in _KEY_NUMBERS))
    algorithm = _OPENSSL_HASHES[digest.name.lower()]()
    return key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(algorithm))


@functools.lru_cache(maxsize=4)
def _openssl_key(numbers: tuple[int, ...]) -> rsa.RSAPrivateKey:
    n, e, d, p, q, dmp1, dmq1, iqmp = numbers
    public = rsa.RSAPublicNumbers(e, n)
    return rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, public).private_key()


def envelope_address(header_address: str) -> str:
    """The bare address of ``Name <user@host>``."""
    if "<" in header_address and header_address.endswith(">"):
        return header_address[header_address.rindex("<") + 1 : -1]
    return header_address
