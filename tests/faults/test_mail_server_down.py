"""The SMTP server down for a minute during a digest send: the notifier retries with backoff,
and when the server is back every digest goes out, none twice, and no subscriber is counted as
bouncing for an outage that was not theirs."""

from __future__ import annotations

import time

import pytest

from tests.faults.workloads import (
    add_digest_readers,
    assert_each_digest_once,
    digests_sent,
    sent_not_accepted,
)
from tests.stack import wait_for

pytestmark = pytest.mark.faults

SUBSCRIBERS = 50
OUTAGE_SECONDS = 60
CLAIMED = "SELECT count(*) FROM deliveries WHERE status = 'claimed'"


def test_a_mail_server_down_for_a_minute_delays_digests_and_loses_none(faults):
    notifier = faults.engines["notifier"]
    addresses = add_digest_readers(notifier, SUBSCRIBERS, prefix="patient")
    faults.mail.stop()
    try:
        assert faults.post("/api/v1/admin/digests/send", json={"frequency": "weekly"}).ok
        wait_for(lambda: faults.count("notifier", CLAIMED) == SUBSCRIBERS,
                 what="the digests to be claimed")  # fmt: skip
        time.sleep(OUTAGE_SECONDS)  # the outage itself; the workers retry with backoff
        assert digests_sent(notifier) == 0
    finally:
        faults.mail.start()
    back = time.monotonic()
    wait_for(lambda: digests_sent(notifier) == SUBSCRIBERS, timeout=240,
             what="the digests once the server is back")  # fmt: skip
    faults.say(f"SMTP down {OUTAGE_SECONDS} s: all {SUBSCRIBERS} digests out "
               f"{time.monotonic() - back:.1f} s after it came back, none twice")  # fmt: skip
    assert_each_digest_once(faults, addresses)
    assert len(faults.mail.received) == SUBSCRIBERS
    assert sent_not_accepted(notifier) == set()
    bounced = "SELECT count(*) FROM subscribers WHERE status != 'confirmed'"
    assert faults.count("notifier", bounced) == 0  # the outage was not theirs
