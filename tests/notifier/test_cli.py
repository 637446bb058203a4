"""Staff's command line for the notifier, run as staff run it: a process of its own."""

import json
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import insert

from services.notifier.models import Story, Subscriber
from shared.events import utcnow


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
