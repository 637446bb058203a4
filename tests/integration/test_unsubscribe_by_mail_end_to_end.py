"""Unsubscribing by mail end to end, with real parts: the confirmation mail reaches the SMTP
sink, its List-Unsubscribe mailto is followed as a mail client does (smtplib to the mailbox,
`sistercities notifier mailbox` running on a free port), and the notifier's worker
unsubscribes the subscriber; a tampered token changes nothing; neither the mailbox's log nor
the worker's holds the token or the sender's address."""

import re
import smtplib
import socket
import threading
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import count_rows
from tests.integration.test_subscriptions_end_to_end import confirm_by_page, link_path
from tests.notifier.test_mailbox import hostile_subject
from tests.stack import free_port, wait_for

pytestmark = pytest.mark.integration


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def mailbox_port(stack):
    port = free_port()
    stack.start("mailbox", "notifier", "mailbox", "--port", str(port))
    try:
        wait_for(lambda: listening(port), timeout=30, what="the mailbox to listen")
        yield port
    finally:
        stack.stop("mailbox")


def follow(mailto: str, port: int, subject: str | None = None) -> tuple[str, int]:
    """Send what a mail client writes for the mailto (RFC 6068); returns the address it went
    to and the client's own port."""
    parts = urlsplit(mailto)
    message = EmailMessage()
    message["From"], message["To"] = "ada.byron@example.org", parts.path
    message["Subject"] = subject or parse_qs(parts.query)["subject"][0]
    message.set_content("Please take me off the list.")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        client_port = smtp.sock.getsockname()[1]
        assert smtp.docmd("NOT-A-COMMAND")[0] == 500  # aiosmtpd logs this with the peer
        assert smtp.send_message(message) == {}  # 250 for every recipient
    return parts.path, client_port


def confirmed_subscriber(client, clean_databases, mail_sink, address: str) -> tuple[str, str]:
    """Subscribe and confirm ``address``; its unsubscribe token and mailto, from the mail."""
    client.post("/api/v1/subscriptions", json={"email": address})
    (confirmation,) = wait_for(lambda: mail_sink.to(address), what="the confirmation mail")
    message = confirmation.message
    confirm_by_page(
        client, link_path(message.get_body(("plain",)).get_content(), "subscriptions/confirm")
    )
    status = "SELECT count(*) FROM subscribers WHERE status = :status"
    assert count_rows(clean_databases["notifier"], status, status="confirmed") == 1
    link, mailto = (part.strip(" <>") for part in message["List-Unsubscribe"].split(","))
    token = link.rsplit("/", 1)[1]
    assert mailto == f"mailto:unsubscribe@sistercities.localhost?subject=unsubscribe%20{token}"
    return token, mailto


def test_the_mailto_of_a_received_mail_unsubscribes_its_subscriber(
    client, stack, clean_databases, mail_sink, mailbox_port
):
    address = "ada.byron@example.org"
    token, mailto = confirmed_subscriber(client, clean_databases, mail_sink, address)
    status = "SELECT count(*) FROM subscribers WHERE status = :status"

    # A token with its signature changed: accepted like any mail, and nothing changes.
    tampered = token[:-8] + ("A" if token[-8] != "A" else "B") + token[-7:]
    follow(mailto, mailbox_port, subject=f"Re: unsubscribe {tampered}")
    wait_for(lambda: "mail_unsubscribe_ignored" in stack.log("mailbox"), what="the mailbox")
    assert count_rows(clean_databases["notifier"], status, status="confirmed") == 1

    _to, client_port = follow(mailto, mailbox_port)
    wait_for(
        lambda: count_rows(clean_databases["notifier"], status, status="unsubscribed") == 1,
        what="the worker to unsubscribe the subscriber",
    )
    # The worker commits, then logs: the line may come a moment after the row changed.
    wait_for(lambda: "unsubscribed_by_mail" in stack.log("notifier"), what="the worker's log")
    mailbox_log = stack.log("mailbox")
    assert "mail_unsubscribe_handed_over" in mailbox_log
    assert "unrecognised" in mailbox_log and "(peer)" in mailbox_log
    for log in (mailbox_log, stack.log("notifier")):
        assert token not in log and tampered not in log
        # The port as a number of its own: its digits also turn up inside timestamps and ids.
        assert not re.search(rf"(?<![\w.]){client_port}(?!\w)", log) and address not in log


def test_a_recipient_other_than_unsubscribe_is_refused(stack, mailbox_port):
    with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.docmd("MAIL", "FROM:<ada@example.org>")
        code, text = smtp.docmd("RCPT", "TO:<news@sistercities.localhost>")
    assert (code, text[:5]) == (550, b"5.1.1")


def test_a_hostile_subject_sent_to_the_running_mailbox_unsubscribes_and_stalls_no_one(
    client, stack, clean_databases, mail_sink, mailbox_port
):
    """The review's attack on `sistercities notifier mailbox` itself: folded encoded words
    that decode to the token and a 45,000-letter run (it held every client for 10 s)."""
    token, _mailto = confirmed_subscriber(client, clean_databases, mail_sink, "bo@example.org")
    answers: list[int] = []

    def hostile_client() -> None:
        with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=60) as smtp:
            smtp.sendmail("bo@example.org", ["unsubscribe@sistercities.localhost"],
                          hostile_subject(token))  # fmt: skip
            answers.append(250)

    sender = threading.Thread(target=hostile_client)
    sender.start()
    with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=60) as other:
        assert other.ehlo()[0] == 250 and other.noop()[0] == 250
    sender.join()
    assert answers == [250]
    status = "SELECT count(*) FROM subscribers WHERE status = 'unsubscribed'"
    wait_for(lambda: count_rows(clean_databases["notifier"], status) == 1,
             what="the worker to unsubscribe the subscriber")  # fmt: skip
