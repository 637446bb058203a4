"""MAIL_BACKEND: the same digests and link mails to an SMTP server, the console, a folder of
.eml files or nowhere; every backend runs the ledger's mark at the message's last moment, so
each digest is sent once whichever one is configured."""

import email
import io
from email.policy import default

import dkim
import pytest
from sqlalchemy import select

from services.notifier import ledger, mail, senders, sending
from services.notifier.config import load_settings
from services.notifier.models import Delivery
from shared.db import session_scope
from shared.events import utcnow
from shared.settings import ConfigError
from tests.notifier.test_mail import DKIM_KEY, a_filled_digest, published
from tests.notifier.test_sending import DOMAIN, add_subscriber, news, story

RETURN_PATH = "bounces+x@sister.example"


def open_backend(backend: str, tmp_path, signer=None) -> senders.Sender:
    return senders.open_sender(
        backend, smtp_url="smtp://127.0.0.1:1025", directory=tmp_path / "mail", signer=signer
    )


def test_mail_backend_chooses_the_sender_and_a_wrong_one_stops_the_start(tmp_path):
    environ = {"DATA_DIR": str(tmp_path)}
    settings = load_settings(environ)
    assert (settings.mail_backend, settings.mail_file_dir) == ("smtp", tmp_path / "mail")
    chosen = {}
    for backend in senders.BACKENDS:
        settings = load_settings({**environ, "MAIL_BACKEND": backend.upper()})
        chosen[backend] = type(open_backend(settings.mail_backend, tmp_path)).__name__
    assert chosen == {"smtp": "SmtpSender", "console": "ConsoleSender",
                      "file": "FileSender", "null": "NullSender"}  # fmt: skip
    elsewhere = load_settings({**environ, "MAIL_FILE_DIR": str(tmp_path / "outgoing")})
    assert elsewhere.mail_file_dir == tmp_path / "outgoing"
    with pytest.raises(ConfigError, match=r"MAIL_BACKEND.*one of smtp, console, file, null"):
        load_settings({**environ, "MAIL_BACKEND": "carrier-pigeon"})


def digests_to(backend: senders.Sender, sessions, settings, count: int = 3) -> list[int]:
    with session_scope(sessions) as session:
        ids = [add_subscriber(session, f"reader{n}@example.org") for n in range(count)]
    news(sessions, story(1, []))
    with session_scope(sessions) as session:
        claimed = ledger.claim(session, ids, "weekly:2026-W48", utcnow(), DOMAIN)
    with backend:
        outcome = sending.send_batch(sessions.kw["bind"], backend, claimed, settings, utcnow())
    assert outcome.sent == count
    with sessions() as session:
        rows = session.scalars(select(Delivery)).all()
    assert {(row.status, row.accepted_at is not None) for row in rows} == {("sent", True)}
    return claimed


def test_the_file_backend_writes_each_digest_once_as_a_signed_eml(
    notifier_sessions, mail_settings, tmp_path
):
    signer = mail.DkimSigner(DKIM_KEY.read_bytes(), "sc2026", "sister.example")
    claimed = digests_to(open_backend("file", tmp_path, signer), notifier_sessions, mail_settings)
    # Sent again (a redelivered batch): the ledger says sent, nothing more is written.
    with open_backend("file", tmp_path) as again:
        sending.send_batch(notifier_sessions.kw["bind"], again, claimed, mail_settings, utcnow())
    files = sorted((tmp_path / "mail").iterdir())
    assert [path.suffix for path in files] == [".eml"] * 3  # nothing half-written left
    messages = [email.message_from_bytes(path.read_bytes(), policy=default) for path in files]
    assert sorted(message["To"] for message in messages) == [
        "reader0@example.org", "reader1@example.org", "reader2@example.org",
    ]  # fmt: skip
    first = files[0].read_bytes()
    assert messages[0]["Return-Path"].startswith("<bounces+")
    # The Return-Path line is the delivery's, outside what the signature covers.
    assert dkim.verify(first.split(b"\r\n", 1)[1], dnsfunc=published)


def test_a_file_whose_mark_is_refused_is_never_written(tmp_path, mail_settings):
    def taken():
        raise ledger.AlreadyTaken(1)

    with open_backend("file", tmp_path) as sender, pytest.raises(ledger.AlreadyTaken):
        sender.send(RETURN_PATH, "ada@example.org", a_filled_digest(mail_settings), taken)
    assert list((tmp_path / "mail").iterdir()) == []


def test_a_folder_that_cannot_be_written_stops_the_batch_like_a_server_that_is_down(
    notifier_sessions, mail_settings, tmp_path
):
    (tmp_path / "mail").write_text("a file where the folder should be")
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"r{n}@example.org") for n in range(2)]
    news(notifier_sessions, story(1, []))
    with session_scope(notifier_sessions) as session:
        claimed = ledger.claim(session, ids, "weekly:2026-W48", utcnow(), DOMAIN)
    with open_backend("file", tmp_path) as sender:
        outcome = sending.send_batch(
            notifier_sessions.kw["bind"], sender, claimed, mail_settings, utcnow()
        )
    assert outcome.sent == 0 and outcome.retry == claimed
    with notifier_sessions() as session:
        assert set(session.scalars(select(Delivery.status))) == {"claimed"}


def test_the_console_backend_prints_each_message_whole(mail_settings):
    out = io.StringIO()
    marks = []

    def mark():
        marks.append(out.getvalue())
        return lambda: marks.append(out.getvalue())

    with senders.ConsoleSender(out) as sender:
        sender.send(RETURN_PATH, "ada@example.org", a_filled_digest(mail_settings), mark)
    printed = out.getvalue()
    assert marks == ["", ""]  # the mark and its ending came first, before any of the message
    assert "mail to ada@example.org" in printed.splitlines()[0]
    message = email.message_from_string(printed.split("\n", 1)[1], policy=default)
    assert message["Return-Path"] == f"<{RETURN_PATH}>"
    assert message["Subject"] == "3 new stories from Sister Cities"
    assert "\r" not in printed


def test_the_null_backend_sends_nothing_and_still_records_each_digest(
    notifier_sessions, mail_settings, tmp_path
):
    digests_to(open_backend("null", tmp_path), notifier_sessions, mail_settings)
    assert not (tmp_path / "mail").exists()
