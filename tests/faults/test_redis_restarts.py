"""Redis killed (SIGKILL) in the middle of a digest send and of a polling cycle, and started
again on the same folder: with the append-only file on, the work completes by itself with the
same counts; with it off, Redis comes back empty, and what re-drives the lost work is each
service's own ledger in PostgreSQL, read by beat's periodic tasks (see the README's Faults)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.blog.city_links import REQUEST_EXPIRES
from services.blog.polling import CLAIM_LEASE
from services.notifier.ledger import STALE_CLAIM
from tests.faults import workloads
from tests.faults.conftest import VISIBILITY_TIMEOUT
from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.faults

SUBSCRIBERS = 2000
FEEDS = 200
UNRELAYED = "SELECT count(*) FROM outbox_events WHERE sent_at IS NULL"
HEARD = "SELECT count(*) FROM handled_events WHERE event_type = 'blog.post_published'"
AOF = pytest.mark.parametrize("aof", [True, False], ids=["aof-on", "aof-off"])


@pytest.fixture
def aof_back_on(faults):
    """After a test that ran Redis without its append-only file, turn it on again."""
    yield
    if not faults.redis_server.appendonly:
        client = faults.redis_server.client(socket_timeout=10)
        client.config_set("appendonly", "yes")
        wait_for(lambda: _aof_ready(client), timeout=30, what="the append-only file rewritten")
        client.close()
        faults.redis_server.appendonly = True


def _aof_ready(client) -> bool:
    info = client.info("persistence")
    return info["aof_enabled"] == 1 and not info["aof_rewrite_in_progress"]


def crash_redis(faults, aof: bool, done) -> int:
    """SIGKILL Redis; while it is down the gateway answers 503, not 500; start it again on the
    same folder, with or without its append-only file. Returns ``done()`` at the kill: work
    already handed out goes on while Redis is down (a digest batch keeps sending), so a count
    taken after the restart may hold all of it."""
    faults.redis_server.kill()
    at_crash = done()
    down = faults.get("/api/v1/cities?q=Ruritania", timeout=30)
    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "service_unavailable"
    time.sleep(1)  # an outage, not a blip: workers see their connections fail
    faults.redis_server.start(appendonly=aof)
    return at_crash


@AOF
def test_a_digest_send_completes_after_a_redis_restart(faults, aof, aof_back_on):
    notifier = faults.engines["notifier"]
    addresses = workloads.start_digest_send(faults, SUBSCRIBERS)
    workloads.wait_until_under_way(lambda: workloads.mail_count(faults), SUBSCRIBERS, "the send")
    at_restart = crash_redis(faults, aof, lambda: workloads.mail_count(faults))
    assert at_restart < SUBSCRIBERS, "the send finished before the crash: the test proves nothing"
    left = SUBSCRIBERS - finish_by_itself(
        lambda: workloads.digests_sent(notifier), SUBSCRIBERS, aof
    )
    if left:
        # Batches lost with Redis leave their ledger rows claimed; beat's schedule_digests
        # hands out claims older than STALE_CLAIM.
        age(faults, "notifier", "UPDATE deliveries SET created_at = created_at - :age "
            "WHERE status = 'claimed'", STALE_CLAIM)  # fmt: skip
        faults.run_periodic("notifier.schedule_digests")
        wait_for(lambda: workloads.digests_sent(notifier) == SUBSCRIBERS, timeout=120,
                 what="every digest to be sent from the ledger")  # fmt: skip
    workloads.assert_each_digest_once(faults, addresses)
    faults.say(f"redis restart (AOF {'on' if aof else 'off'}) mid-send: {at_restart} of "
               f"{SUBSCRIBERS} out at the crash; {left} left claimed and sent again from the "
               f"ledger; {workloads.mail_count(faults)} at the server, none twice")  # fmt: skip


@AOF
def test_a_polling_cycle_completes_after_a_redis_restart(faults, aof, aof_back_on):
    workloads.add_known_cities(faults)
    with FeedServer() as server:
        total = workloads.start_polling_cycle(faults, server, FEEDS)
        workloads.wait_until_under_way(
            lambda: faults.count("blog", workloads.POSTS), total, "the polling cycle"
        )
        at_restart = crash_redis(faults, aof, lambda: faults.count("blog", workloads.POSTS))
        assert at_restart < total, "the cycle finished before the crash: the test proves nothing"
        unfetched = total - finish_by_itself(
            lambda: faults.count("blog", workloads.POSTS), total, aof
        )
        if unfetched:
            # Fetches lost with Redis: their feeds stay claimed for CLAIM_LEASE, then beat's
            # schedule_fetches (every minute) hands them out again.
            age(faults, "blog", "UPDATE feeds SET claimed_until = claimed_until - :age "
                "WHERE claimed_until IS NOT NULL", CLAIM_LEASE)  # fmt: skip
            faults.run_periodic("blog.schedule_fetches")
            wait_for(lambda: faults.count("blog", workloads.POSTS) == total, timeout=120,
                     what="every post to be stored")  # fmt: skip
    # Posts stored with no request out are asked about at beat's next link_pending_posts.
    faults.run_periodic("blog.link_pending_posts")
    announced = finish_by_itself(lambda: faults.count("blog", workloads.ANNOUNCED), total, aof)
    if announced < total:
        # A request or its answer lost with Redis (or a callback the directory could not send
        # while it was away): asked again once REQUEST_EXPIRES has passed.
        age(faults, "blog", "UPDATE posts SET link_requested_at = link_requested_at - :age "
            "WHERE link_requested_at IS NOT NULL", REQUEST_EXPIRES)  # fmt: skip
    workloads.assert_each_post_announced_once(faults, total)
    # Every announcement relayed (the outbox marks it sent) and whatever reached the notifier
    # handled: an event lost with Redis after the relay marked it sent is never sent again.
    wait_for(lambda: faults.count("blog", UNRELAYED) == 0, timeout=60, what="the relay")
    # An event the notifier held when Redis died comes back after the visibility timeout (AOF
    # kept it in the unacked set): a quieter spell than that is not the end of delivery.
    quiet = VISIBILITY_TIMEOUT + 10 if aof else 3.0
    heard = workloads.settle(lambda: faults.count("notifier", HEARD), quiet=quiet, until=total)
    if aof:
        assert heard == total
    faults.say(f"redis restart (AOF {'on' if aof else 'off'}) mid-cycle: {at_restart} of {total} "
               f"posts stored at the crash; fetched again from the ledger: {unfetched} posts' "
               f"feeds; asked again: {total - announced} posts' links; {total} stored and "
               f"announced once each; the notifier heard {heard} of the announcements")  # fmt: skip


def finish_by_itself(done, total: int, aof: bool) -> int:
    """How much of the work completes by itself: with the append-only file on, everything
    Redis acknowledged is back, and messages workers held come back after the visibility
    timeout; without it, whatever still runs finishes and the count stops."""
    return workloads.settle(done, quiet=VISIBILITY_TIMEOUT + 10 if aof else 5.0, until=total)


def age(faults, service: str, sql: str, by: timedelta) -> None:
    """Date rows back by ``by`` and a minute: the time a test cannot wait for has passed."""
    with faults.engines[service].begin() as conn:
        conn.execute(text(sql), {"age": by + timedelta(minutes=1)})
