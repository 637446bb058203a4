"""Every message's List-Unsubscribe names its subscriber twice: the one-click link and a mailto
whose subject carries the same signed token, on one unfolded line, whether the digest is
filled in from its template or built whole."""

import email
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dkim
import pytest

from services.notifier import digests, emails, mail, senders
from services.notifier.models import Subscriber
from shared.events import utcnow

HEADERS = mail.ListHeaders(mail.feedback_id("test", "once"))


def a_digest() -> digests.Digest:
    stories = [
        digests.StoryView(n, f"Story {n}", "Delegates met…", f"https://medium.com/p/{n:012x}",
                          None, utcnow())
        for n in range(3)
    ]  # fmt: skip
    return digests.Digest(stories, 0)


def subscriber(subscriber_id: int, address: str) -> Subscriber:
    return Subscriber(id=subscriber_id, email=address, city_ids=[], frequency="weekly")


def header_line(data: bytes, name: bytes) -> bytes:
    (line,) = [line for line in data.split(b"\r\n") if line.startswith(name + b": ")]
    return line


def unsubscribe_links(data: bytes) -> tuple[str, str]:
    """(the https link, the mailto) of a message's List-Unsubscribe."""
    value = email.message_from_bytes(data, policy=default)["List-Unsubscribe"]
    link, mailto = (part.strip().strip("<>") for part in value.split(","))
    return link, mailto


def test_each_filled_digest_carries_its_subscribers_own_mailto(mail_settings, tokens):
    template = emails.render_digest(a_digest(), subscriber(1, "x@example.org"), mail_settings)
    assert template.usable
    readers = {7: "ada@example.org", 8: "bob@example.org"}
    mailtos = set()
    for subscriber_id, address in readers.items():
        message_id = f"<digest.{subscriber_id}@sister.example>"
        data = emails.personalize(
            template, subscriber(subscriber_id, address), message_id, mail_settings
        )
        link, mailto = unsubscribe_links(data)
        token = link.rsplit("/", 1)[1]
        parts = urlsplit(mailto)
        assert (parts.scheme, parts.path) == ("mailto", "unsubscribe@sister.example")
        # RFC 6068: the space percent-encoded; the mail client decodes the subject it writes.
        assert parts.query == f"subject=unsubscribe%20{token}"
        assert parse_qs(parts.query)["subject"] == [f"unsubscribe {token}"]
        assert tokens.read("unsubscribe", token)[0] == subscriber_id
        line = header_line(data, b"List-Unsubscribe")
        assert len(line) < 998 and b"=?" not in line  # one line, not an encoded word
        assert line == f"List-Unsubscribe: <{link}>, <{mailto}>".encode()
        mailtos.add(mailto)
    assert len(mailtos) == 2


def test_the_slow_path_writes_the_same_personal_header(mail_settings):
    ada = subscriber(7, "ada@example.org")
    message_id = "<digest.7@sister.example>"
    template = emails.render_digest(a_digest(), ada, mail_settings)
    filled = emails.personalize(template, ada, message_id, mail_settings)
    template.usable = False  # as if the encoder had split a mark
    built = emails.personalize(template, ada, message_id, mail_settings)
    assert header_line(built, b"List-Unsubscribe") == header_line(filled, b"List-Unsubscribe")
    assert unsubscribe_links(built)[1].startswith("mailto:unsubscribe@sister.example?subject=")


def test_a_template_whose_marks_did_not_come_through_whole_is_not_used(mail_settings):
    stray = mail.Rendered("News", f"Dear {mail.RECIPIENT_MARK}", "<p>News</p>")
    assert not mail.MessageTemplate(mail_settings.sender, stray, (), HEADERS).usable
    with pytest.raises(ValueError, match="%%name%%"):
        mail.MessageTemplate(mail_settings.sender, stray, ("{unsubscribe}",), HEADERS)


def test_fill_puts_every_value_in_its_place_and_nothing_else():
    rendered = mail.Rendered(
        "News %%not_a_mark%%", "Leave: %%bye%%\nAgain: %%bye%%\n", '<a href="%%bye%%">x</a>'
    )
    template = mail.MessageTemplate("News <news@sister.example>", rendered, ("%%bye%%",), HEADERS)
    assert template.usable
    data = template.fill("ada@example.org", "<m@sister.example>", "<https://s/u/t>, <mailto:u@s>",
                         {"%%bye%%": "https://s/u/t"})  # fmt: skip
    message = email.message_from_bytes(data, policy=default)
    assert (message["To"], message["Message-ID"]) == ("ada@example.org", "<m@sister.example>")
    assert message["List-Unsubscribe"] == "<https://s/u/t>, <mailto:u@s>"
    assert message["Subject"] == "News %%not_a_mark%%"
    assert message.get_body(("plain",)).get_content().count("https://s/u/t") == 2
    assert 'href="https://s/u/t"' in message.get_body(("html",)).get_content()


def test_the_confirmation_mail_carries_a_personal_mailto(mail_settings, tokens):
    token = tokens.make("unsubscribe", 5, "ada@example.org")
    data = mail.build_message(
        sender=mail_settings.sender,
        recipient="ada@example.org",
        rendered=mail.Rendered("Confirm", "Confirm here", "<p>Confirm here</p>"),
        message_id="<confirm.5@sister.example>",
        unsubscribe_url=f"https://sister.example/unsubscribe/{token}",
        unsubscribe_mailto=mail_settings.mailto(token),
        headers=HEADERS,
    )
    _link, mailto = unsubscribe_links(data)
    assert unquote(urlsplit(mailto).query) == f"subject=unsubscribe {token}"


DKIM_KEY = Path(__file__).parent.parent / "fixtures" / "mail" / "dkim_test_key.pem"
DKIM_RECORD = (DKIM_KEY.parent / "dkim_test_key.txt").read_bytes().strip()


def published(name: bytes, timeout: int = 5) -> bytes | None:
    """The DNS a receiver asks: the test key's TXT record at its selector, nothing else."""
    return DKIM_RECORD if name == b"sc2026._domainkey.sister.example." else None


def a_filled_digest(mail_settings) -> bytes:
    ada = subscriber(7, "ada@example.org")
    template = emails.render_digest(a_digest(), ada, mail_settings)
    assert template.usable
    message_id = "<digest.weekly.2026-W48.7@sister.example>"
    return emails.personalize(template, ada, message_id, mail_settings)


def test_a_digest_names_its_list_and_its_feedback_id(mail_settings):
    message = email.message_from_bytes(a_filled_digest(mail_settings), policy=default)
    assert message["List-Id"] == "Sister Cities digests <digests.sister.example>"
    assert message["Feedback-ID"] == "digest:weekly:sistercities"


def test_a_filled_digest_is_dkim_signed_and_verifies_where_it_is_received(sink, mail_settings):
    signer = mail.DkimSigner(DKIM_KEY.read_bytes(), "sc2026", "sister.example")
    with senders.SmtpSender(sink.url, signer=signer) as sender:
        sender.send("news@sister.example", "ada@example.org", a_filled_digest(mail_settings))
    (received,) = sink.to("ada@example.org")
    assert received.data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(received.data, dnsfunc=published)
    signed = email.message_from_bytes(received.data, policy=default)["DKIM-Signature"]
    for header in ("list-unsubscribe", "list-id", "feedback-id", "from", "message-id"):
        assert header in signed.replace(" ", "").lower().split("h=")[1].split(";")[0].split(":")
    # A changed one-click link breaks the signature: nobody can swap in their own.
    forged = received.data.replace(b"List-Unsubscribe: <https://sister.example/",
                                   b"List-Unsubscribe: <https://evil.example/")  # fmt: skip
    assert forged != received.data and not dkim.verify(forged, dnsfunc=published)


def test_the_openssl_rsa_signs_byte_for_byte_as_dkimpys_own_and_is_what_dkimpy_calls(
    mail_settings,
):
    """dkimpy's RSA step is replaced by OpenSSL's (mail.openssl_rsassa_sign): an upgrade of
    dkimpy that renames the step or changes what it takes fails here."""
    import hashlib

    from dkim.crypto import RSASSA_PKCS1_v1_5_sign, parse_pem_private_key

    signer = mail.DkimSigner(DKIM_KEY.read_bytes(), "sc2026", "sister.example")
    assert dkim.RSASSA_PKCS1_v1_5_sign is mail.openssl_rsassa_sign
    key = parse_pem_private_key(DKIM_KEY.read_bytes())
    for method in (hashlib.sha256, hashlib.sha1):
        for text in (b"", b"a digest", bytes(range(256)) * 40):
            assert mail.openssl_rsassa_sign(method(text), key) == RSASSA_PKCS1_v1_5_sign(
                method(text), key
            )
    assert dkim.verify(signer.sign(a_filled_digest(mail_settings)), dnsfunc=published)


def test_without_a_key_nothing_is_signed(sink, mail_settings):
    with senders.SmtpSender(sink.url) as sender:
        sender.send("news@sister.example", "ada@example.org", a_filled_digest(mail_settings))
    (received,) = sink.to("ada@example.org")
    assert b"DKIM-Signature" not in received.data
