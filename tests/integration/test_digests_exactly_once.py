"""Exactly one digest per subscriber and period, for real: 5,000 digests to a local SMTP
server, the notifier worker killed with SIGKILL in the middle of the send and started again;
the server must count 5,000 distinct recipients and no Message-ID twice."""

from datetime import timedelta

import pytest
from sqlalchemy import insert, text

from services.notifier.models import Story, Subscriber
from shared.events import utcnow
from tests.conftest import count_rows
from tests.stack import wait_for

pytestmark = pytest.mark.integration

SUBSCRIBERS = 5000


def fill_notifier(engine) -> None:
    confirmed = utcnow() - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            insert(Subscriber),
            [
                {"email": f"reader{n}@example.org", "frequency": "weekly", "weekday": 0,
                 "city_ids": [], "status": "confirmed", "created_at": confirmed,
                 "confirmed_at": confirmed, "soft_failures": 0}
                for n in range(SUBSCRIBERS)
            ],
        )  # fmt: skip
        conn.execute(
            insert(Story).values(
                post_id=1, title="Minneapolis and Najaf renew their ties", excerpt="Delegates…",
                url="https://medium.com/p/0123456789ab", image=None, published_at=utcnow(),
                received_at=utcnow() - timedelta(hours=1), city_ids=[],
            )
        )  # fmt: skip


def sent(engines) -> int:
    return count_rows(engines["notifier"], "SELECT count(*) FROM deliveries WHERE status = 'sent'")


def test_a_worker_killed_mid_send_neither_repeats_nor_skips_a_digest(
    client, stack, services, admin_headers, clean_databases, mail_sink
):
    mail_sink.clear()
    fill_notifier(clean_databases["notifier"])
    response = client.post("/api/v1/admin/digests/send", json={"frequency": "weekly"},
                           headers=admin_headers)  # fmt: skip
    assert response.status_code == 202

    wait_for(lambda: len(mail_sink.received) >= SUBSCRIBERS // 5, timeout=120,
             interval=0.05, what="the send to be under way")  # fmt: skip
    stack.kill("notifier")
    at_kill = len(mail_sink.received)
    assert at_kill < SUBSCRIBERS, "the send finished before the kill: the test proves nothing"

    stack.start_worker("notifier")  # (a ping would wait behind the queued batches)
    # Batches the dead worker held come back after the visibility timeout (20 s in tests).
    wait_for(lambda: sent(clean_databases) == SUBSCRIBERS, timeout=240,
             what="every digest to be sent")  # fmt: skip

    recipients = [address for item in mail_sink.received for address in item.recipients]
    message_ids = [item.message["Message-ID"] for item in mail_sink.received]
    # Never twice.
    assert len(recipients) == len(set(recipients)) == len(set(message_ids)) == len(message_ids)
    # Never skipped, but for the window the docs name: a message marked sent whose last line
    # the kill kept from the server. It is at most one per connection the dead worker held
    # (2 threads), and the ledger names it (sent, never accepted).
    uncertain = set(unaccepted(clean_databases))
    missing = {f"reader{n}@example.org" for n in range(SUBSCRIBERS)} - set(recipients)
    assert missing <= uncertain and len(uncertain) <= 2, (missing, uncertain)
    assert len(recipients) == SUBSCRIBERS - len(missing)
    assert at_kill < len(recipients)
    mail_sink.clear()


def unaccepted(engines) -> list[str]:
    with engines["notifier"].connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
                    " WHERE d.status = 'sent' AND d.accepted_at IS NULL"
                )
            ).scalars()
        )


def test_a_mail_server_down_for_a_minute_delays_digests_and_loses_none(
    client, stack, admin_headers, clean_databases, mail_sink
):
    import time

    mail_sink.clear()
    confirmed = utcnow() - timedelta(days=1)
    with clean_databases["notifier"].begin() as conn:
        conn.execute(insert(Subscriber), [
            {"email": f"patient{n}@example.org", "frequency": "weekly", "weekday": 0,
             "city_ids": [], "status": "confirmed", "created_at": confirmed,
             "confirmed_at": confirmed, "soft_failures": 0}
            for n in range(50)
        ])  # fmt: skip
        conn.execute(insert(Story).values(
            post_id=2, title="News", excerpt="…", url="https://medium.com/p/0123456789ac",
            image=None, published_at=utcnow(), received_at=utcnow() - timedelta(hours=1),
            city_ids=[],
        ))  # fmt: skip
    mail_sink.stop()
    try:
        client.post("/api/v1/admin/digests/send",
                    json={"frequency": "weekly"}, headers=admin_headers)  # fmt: skip
        claimed = "SELECT count(*) FROM deliveries WHERE status = 'claimed'"
        wait_for(lambda: count_rows(clean_databases["notifier"], claimed) == 50,
                 what="the digests to be claimed")  # fmt: skip
        time.sleep(60)  # the server stays down; the workers retry with backoff
        assert sent(clean_databases) == 0
    finally:
        mail_sink.start()
    wait_for(lambda: sent(clean_databases) == 50, timeout=240, what="the digests once it is back")
    recipients = [address for item in mail_sink.received for address in item.recipients]
    assert sorted(recipients) == sorted(f"patient{n}@example.org" for n in range(50))
    assert unaccepted(clean_databases) == []
    bounced = "SELECT count(*) FROM subscribers WHERE status != 'confirmed'"
    assert count_rows(clean_databases["notifier"], bounced) == 0  # the outage was not theirs
    mail_sink.clear()
