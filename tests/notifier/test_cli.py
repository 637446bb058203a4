"""Staff's command line for the notifier, run as staff run it: a process of its own."""

import json
import re
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import insert, select

from services.notifier.models import Campaign, Story, Subscriber
from shared.events import utcnow
from tests.conftest import count_rows
from tests.integration.test_campaigns_end_to_end import add_subscribers
from tests.notifier.conftest import add_unconfirmed_digest
from tests.stack import wait_for


def sistercities(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sistercities", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_stats_and_preview(stack_env, clean_databases):
    confirmed = utcnow() - timedelta(days=1)
    with clean_databases["notifier"].begin() as conn:
        conn.execute(insert(Subscriber).values(
            email="staff@example.org", frequency="weekly", weekday=0, city_ids=[],
            status="confirmed", created_at=confirmed, confirmed_at=confirmed, soft_failures=0,
        ))  # fmt: skip
        conn.execute(insert(Story).values(
            post_id=9, title="A story for the preview", excerpt="…", image=None,
            url="https://medium.com/p/00000000abcd", published_at=utcnow(), city_ids=[],
            received_at=utcnow() - timedelta(minutes=5),
        ))  # fmt: skip

    stats = sistercities(stack_env, "notifier", "stats")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["by_status"] == {"confirmed": 1}

    preview = sistercities(stack_env, "notifier", "preview", "staff@example.org")
    assert preview.returncode == 0, preview.stderr
    assert "1 piece of news for staff@example.org" in preview.stdout
    assert "Subject: 1 new story from Sister Cities" in preview.stdout

    unknown = sistercities(stack_env, "notifier", "preview", "nobody@example.org")
    assert unknown.returncode == 1 and "no subscriber" in unknown.stderr


def test_digests_sent_and_not_acknowledged_are_listed_and_resent_by_staff(
    stack_env, clean_databases, mail_sink
):
    period = "weekly:2026-W48"
    message_id = add_unconfirmed_digest(
        clean_databases["notifier"], "lost@example.org", period, timedelta(minutes=10)
    )

    listed = sistercities(stack_env, "notifier", "digests", "unconfirmed")
    assert listed.returncode == 0, listed.stderr
    assert f"{period}: 1 sent, not acknowledged" in listed.stdout and message_id in listed.stdout
    other = sistercities(
        stack_env, "notifier", "digests", "unconfirmed", "--period", "daily:2026-11-28"
    )
    assert other.stdout.strip() == "no digest sent and not acknowledged"
    bad = sistercities(stack_env, "notifier", "digests", "unconfirmed", "--period", "W48")
    assert bad.returncode == 1 and "period must read" in bad.stderr

    resend = ["notifier", "digests", "resend-unconfirmed", "--period", period]
    declined = subprocess.run(
        [sys.executable, "-m", "sistercities", *resend], env=stack_env, input="n\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert declined.returncode == 1 and "Send 1 digest of weekly:2026-W48 again" in declined.stdout
    assert mail_sink.received == []

    sent = sistercities(stack_env, *resend, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.splitlines()[-1].startswith("1 re-sent, 0 skipped")
    (mail,) = mail_sink.to("lost@example.org")
    assert mail.message["Message-ID"] == message_id
    again = sistercities(stack_env, *resend, "--yes")
    assert again.stdout.splitlines()[-1] == f"no digest of {period} sent and not acknowledged"
    assert len(mail_sink.received) == 1


def test_staff_write_and_send_a_campaign_from_the_command_line(
    stack_env, stack, clean_databases, mail_sink
):
    notifier = clean_databases["notifier"]
    add_subscribers(notifier, [("a@example.org", [10], "confirmed"),
                               ("b@example.org", [20, 10], "confirmed"),
                               ("kyoto@example.org", [20], "confirmed"),
                               ("pending@example.org", [10], "pending")])  # fmt: skip

    created = subprocess.run(
        [sys.executable, "-m", "sistercities", "notifier", "campaigns", "create",
         "--subject", "Lyon needs you", "--body-file", "-", "--city", "10"],
        env=stack_env, input="Write to the **mayor** of Lyon.\n", capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    campaign_id = int(re.match(r"campaign (\d+) created \(draft\)", created.stdout)[1])
    with notifier.connect() as conn:
        created_by = conn.scalar(select(Campaign.created_by))
    assert created_by.endswith("at the command line")  # under the operator's name

    listed = sistercities(stack_env, "notifier", "campaigns", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"{campaign_id}\s+draft\s+.*Lyon needs you", listed.stdout)
    shown = sistercities(stack_env, "notifier", "campaigns", "show", str(campaign_id))
    assert "audience: followers of city 10" in shown.stdout
    assert "reaches now: 2 confirmed subscribers" in shown.stdout
    assert "Write to the mayor of Lyon." in shown.stdout  # the plain text, not the Markdown

    send = ["notifier", "campaigns", "send", str(campaign_id)]
    declined = subprocess.run(
        [sys.executable, "-m", "sistercities", *send], env=stack_env, input="n\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert declined.returncode == 1
    assert '"Lyon needs you" now to 2 confirmed subscribers' in declined.stdout
    sent = sistercities(stack_env, *send, "--yes")
    assert sent.returncode == 0, sent.stderr
    wait_for(
        lambda: "sent" in sistercities(stack_env, "notifier", "campaigns", "list", "--status",
                                       "sent").stdout,
        timeout=60, what="the campaign to be sent",
    )  # fmt: skip
    assert sorted(mail.recipients[0] for mail in mail_sink.received) == [
        "a@example.org",
        "b@example.org",
    ]

    again = sistercities(stack_env, *send, "--yes")
    assert again.returncode == 1 and "this campaign is sent" in again.stderr
    unknown = sistercities(stack_env, "notifier", "campaigns", "show", "999999")
    assert unknown.returncode == 1 and "no such campaign" in unknown.stderr
    for option, refusal in [("--country", "two-letter country codes"), ("--city", "integer")]:
        bad = subprocess.run(
            [sys.executable, "-m", "sistercities", "notifier", "campaigns", "create",
             "--subject", "x", "--body-file", "-", option, "France"],
            env=stack_env, input="Act.", capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert bad.returncode != 0 and refusal in bad.stderr
    empty = sistercities(stack_env, "notifier", "campaigns", "create", "--subject", "x",
                         "--body-file", "-")  # fmt: skip
    assert empty.returncode == 1 and "a body is needed" in empty.stderr
    assert count_rows(notifier, "SELECT count(*) FROM campaigns") == 1
