"""Bounces end to end, with real parts: the confirmation mail reaches the SMTP sink from its
own VERP return path; a delivery status notification for it, sent to the running mailbox
(`sistercities notifier mailbox`), reaches the notifier's worker, which stops mail to the
address; neither log holds the id or the address."""

import smtplib

import pytest

from tests.conftest import count_rows
from tests.integration.test_unsubscribe_by_mail_end_to_end import (  # noqa: F401 (fixture)
    confirmed_subscriber,
    mailbox_port,
)
from tests.notifier.test_bounces import dsn
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_a_hard_bounce_at_the_running_mailbox_stops_mail_to_the_address(
    client,
    stack,
    clean_databases,
    mail_sink,
    mailbox_port,  # noqa: F811
):
    address = "grace.bounced@example.org"
    confirmed_subscriber(client, clean_databases, mail_sink, address)
    (confirmation,) = mail_sink.to(address)
    return_path = confirmation.sender
    assert return_path.startswith("bounces+") and return_path.endswith("@sistercities.localhost")

    with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=10) as smtp:
        smtp.sendmail("", [return_path], dsn("failed", "5.1.1", address).as_bytes())
    bounced = "SELECT count(*) FROM subscribers WHERE status = 'bounced'"
    wait_for(lambda: count_rows(clean_databases["notifier"], bounced) == 1,
             what="the worker to record the bounce")  # fmt: skip
    assert "mail_bounce_handed_over" in stack.log("mailbox")
    assert "bounce_recorded" in stack.log("notifier")
    bounce_id = return_path.split("+", 1)[1].split("@")[0]
    for log in (stack.log("mailbox"), stack.log("notifier")):
        assert bounce_id not in log and address not in log
