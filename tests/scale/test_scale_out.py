"""Every kind of process scales out: two workers of each service, two relays and two beats run
at once on the same Redis and databases, and nothing is done twice.

The session's stack runs one worker of each service and one relay; this module adds a second
of each, and two beats. Work is counted where it lands: each event's delivery in the
consumers' logs (one "received" per event and consumer), each feed's fetches at the feed
server, each digest at the SMTP server, each beat's sends in its log.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert, text, update

from services.blog.models import Feed
from services.notifier.models import Story, Subscriber
from shared.events import utcnow
from shared.routing import SERVICES
from sistercities.beat import LOCK_KEY, LOCK_SECONDS, STANDBY_SECONDS
from tests.conftest import count_rows
from tests.feed_server import FeedServer
from tests.stack import Stack, duplicates_dropped, wait_for

pytestmark = pytest.mark.integration

BEATS = ("beat-1", "beat-2")
SENDING = "Scheduler: Sending due task"


@pytest.fixture(scope="module")
def second(stack, stack_env, tmp_path_factory):
    """The second worker of each service, the second relay, and two beats."""
    extra = Stack(stack_env, tmp_path_factory.mktemp("scale-out-logs"))
    for service in SERVICES:
        extra.start_worker(service, f"{service}-2")
    extra.start("relay-2", "relay")
    for name in BEATS:
        extra.start(name, "beat")
    try:
        for service in SERVICES:
            wait_for(lambda s=service: " ready." in extra.log(f"{s}-2"), timeout=60,
                     interval=0.2, what=f"the second {service} worker")  # fmt: skip
        wait_for(lambda: "relay_started" in extra.log("relay-2"), timeout=30)
        yield extra
    finally:
        extra.stop_all()


def worker_logs(stack: Stack, extra: Stack, service: str) -> str:
    return stack.log(service) + extra.log(f"{service}-2")


def event_ids(engine, event_type: str) -> set[str]:
    with engine.connect() as conn:
        query = text("SELECT event_id FROM outbox_events WHERE event_type = :t")
        return set(conn.execute(query, {"t": event_type}).scalars())


def handled_by_notifier(engines, ids: set[str]) -> bool:
    with engines["notifier"].connect() as conn:
        return ids <= set(conn.execute(text("SELECT event_id FROM handled_events")).scalars())


def assert_each_delivered_once(stack, second, before: int) -> None:
    """No event reached the notifier twice: none dropped as a duplicate since ``before``."""
    assert duplicates_dropped(worker_logs(stack, second, "notifier")) == before


def test_an_imports_events_reach_each_consumer_once_through_two_relays(
    client, stack, second, admin_headers, clean_databases
):
    duplicates_before = duplicates_dropped(worker_logs(stack, second, "notifier"))
    rows = ["city_a,country_a,city_b,country_b,since,status,source,notes,lat_a,lng_a,lat_b,lng_b"]
    rows += [
        f"Scaleton {n},United States,Twinburg {n},Germany,2001,active,,,"
        f"{30 + n / 10:.2f},{-100 + n / 10:.2f},{48 + n / 100:.2f},{9 + n / 100:.2f}"
        for n in range(300)
    ]
    response = client.post(
        "/api/v1/admin/partnerships/import",
        data={"file": (io.BytesIO("\n".join(rows).encode()), "scale.csv")},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["partnerships_created"] == 300

    ids = event_ids(clean_databases["directory"], "directory.partnership_changed")
    assert len(ids) == 300
    wait_for(lambda: handled_by_notifier(clean_databases, ids), timeout=60, interval=0.2,
             what="every partnership event at the notifier")  # fmt: skip
    assert count_rows(clean_databases["directory"],
                      "SELECT count(*) FROM outbox_events WHERE sent_at IS NULL") == 0  # fmt: skip
    assert_each_delivered_once(stack, second, duplicates_before)


FEEDS, ITEMS = 200, 3


def feed(number: int) -> str:
    items = "".join(
        f"<item><title>Story {item} of feed {number}</title>"
        f"<link>https://medium.com/scale/story-{number:06x}{item:06x}</link>"
        f'<guid isPermaLink="false">https://medium.com/p/{number:06x}{item:06x}</guid>'
        f"<pubDate>Tue, 24 Nov 2026 1{item}:00:00 GMT</pubDate>"
        f"<description>News {item} from feed {number}.</description></item>"
        for item in range(ITEMS)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Feed {number}</title><link>https://medium.com/scale-{number}</link>"
        f"{items}</channel></rss>"
    )


def test_200_feeds_are_each_polled_once_and_each_story_stored_and_announced_once(
    client, stack, second, services, admin_headers, clean_databases
):
    engines = clean_databases
    duplicates_before = duplicates_dropped(worker_logs(stack, second, "notifier"))
    with FeedServer() as server:
        paths = [f"/feeds/{n}" for n in range(FEEDS)]
        for number, path in enumerate(paths):
            url = server.serve(path, feed(number), etag=f'"{number}"')
            response = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers)
            assert response.status_code == 201, response.json
        posts = FEEDS * ITEMS
        wait_for(lambda: len(event_ids(engines["blog"], "blog.post_published")) == posts,
                 timeout=120, interval=0.5, what="every story stored and announced")  # fmt: skip
        assert set(server.hits.values()) == {1}, "each feed fetched once on registering"

        # Every feed due again, and the polling scheduled by two schedulers at the same time
        # (two beats in a race): each feed is still fetched once more, never twice.
        with engines["blog"].begin() as conn:
            conn.execute(update(Feed).values(next_check_at=utcnow() - timedelta(minutes=1)))
        outcomes = services.call_many([("blog.schedule_fetches", (), {})] * 2, timeout=30)
        # (A beat's own schedule_fetches may join the race and take some.)
        scheduled = [outcome["scheduled"] for outcome, _seconds in outcomes]
        assert sum(scheduled) <= FEEDS, scheduled
        wait_for(lambda: sum(server.not_modified.values()) == FEEDS, timeout=60, interval=0.2,
                 what="the second poll of every feed")  # fmt: skip
        time.sleep(1)  # a second fetch of any feed would show by now
        assert Counter(server.hits[path] for path in paths) == {2: FEEDS}

    assert count_rows(engines["blog"], "SELECT count(*) FROM posts") == posts
    ids = event_ids(engines["blog"], "blog.post_published")
    assert len(ids) == posts
    assert count_rows(engines["blog"],
                      "SELECT count(*) FROM outbox_events WHERE event_type = 'blog.post_updated'"
                      ) == 0  # fmt: skip
    wait_for(lambda: handled_by_notifier(engines, ids), timeout=60, interval=0.2,
             what="every announcement at the notifier")  # fmt: skip
    assert count_rows(engines["notifier"], "SELECT count(*) FROM stories") == posts
    assert_each_delivered_once(stack, second, duplicates_before)


DIGESTS = 1000


def test_1000_digests_scheduled_twice_at_once_are_each_sent_once(
    stack, second, services, clean_databases, mail_sink
):
    mail_sink.clear()
    confirmed = utcnow() - timedelta(days=1)
    with clean_databases["notifier"].begin() as conn:
        conn.execute(insert(Subscriber), [
            dict(email=f"twice{n}@example.org", frequency="weekly", weekday=0, city_ids=[],
                 status="confirmed", created_at=confirmed, confirmed_at=confirmed,
                 soft_failures=0)
            for n in range(DIGESTS)
        ])  # fmt: skip
        conn.execute(insert(Story).values(
            post_id=1, title="Scaled out", excerpt="Two of everything.", url="https://medium.com/p/1",
            image=None, published_at=utcnow(), received_at=utcnow() - timedelta(hours=1),
            city_ids=[],
        ))  # fmt: skip

    # Two schedulers in a race, each treating every subscriber as due now. Each hands out
    # every row still to be sent, so most rows go to two batches, on two workers: the ledger
    # lets one of them send it.
    calls = [("notifier.schedule_digests", ("weekly",), {"every": True})] * 2
    outcomes = services.call_many(calls, timeout=60)
    assert all(isinstance(outcome, dict) for outcome, _seconds in outcomes), outcomes

    sent = "SELECT count(*) FROM deliveries WHERE status = 'sent'"
    wait_for(lambda: count_rows(clean_databases["notifier"], sent) == DIGESTS, timeout=120,
             interval=0.2, what="every digest sent")  # fmt: skip
    wait_for(lambda: len(mail_sink.received) >= DIGESTS, timeout=10, what="the last messages")
    time.sleep(1)
    recipients = Counter(address for item in mail_sink.received for address in item.recipients)
    assert len(recipients) == DIGESTS and set(recipients.values()) == {1}
    mail_sink.clear()


def test_one_beat_sends_at_a_time_and_a_standby_takes_over_within_the_lock_ttl(
    second, redis_client
):
    pids = {name: second.processes[name].pid for name in BEATS}

    def holder() -> str | None:
        token = (redis_client.get(LOCK_KEY) or b"").decode()
        return next((name for name, pid in pids.items() if f":{pid}:" in token), None)

    leader = wait_for(holder, timeout=30, what="one beat to hold the lock")
    (standby,) = set(BEATS) - {leader}
    # A beat's first periodic task comes due one interval (a minute) after it started.
    wait_for(lambda: SENDING in second.log(leader), timeout=90, interval=0.5,
             what="the leading beat to send a periodic task")  # fmt: skip
    assert SENDING not in second.log(standby)
    assert holder() == leader

    second.kill(leader)
    killed_at = time.monotonic()
    wait_for(lambda: holder() == standby, timeout=LOCK_SECONDS + 10, interval=0.1,
             what="the standby to take the lock")  # fmt: skip
    took_over = time.monotonic() - killed_at
    # What came due while it stood by goes at once.
    wait_for(lambda: SENDING in second.log(standby), timeout=10, interval=0.2,
             what="the new leader to send the periodic tasks due")  # fmt: skip
    print(f"\nbeat: the standby took over {took_over:.1f} s after the leader was killed")
    assert took_over <= LOCK_SECONDS + STANDBY_SECONDS + 1

    # The killed beat, started again, stands by.
    before = len(second.log(leader))
    pids[leader] = second.start(leader, "beat").pid
    wait_for(lambda: "beat: Starting..." in second.log(leader)[before:], timeout=30)
    time.sleep(2 * STANDBY_SECONDS)
    assert holder() == standby
