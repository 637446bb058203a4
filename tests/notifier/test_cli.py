"""Staff's command line for the notifier, run as staff run it: a process of its own."""

import json
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import insert

from services.notifier.models import Story, Subscriber
from shared.events import utcnow
from tests.notifier.conftest import add_unconfirmed_digest


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
