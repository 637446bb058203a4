"""PostgreSQL crashed (``pg_ctl stop -m immediate``) and started again under load — a digest
send and a polling cycle under way. While it is down the gateway answers 503, never 500, for
what needs a service's database, and City Search (held in the directory's memory) still
answers; once it is back, workers and gateway reconnect by themselves (the pools ping a
connection before using it; tasks that met the outage are retried with backoff) and no task is
lost: every digest once, every post stored and announced once."""

from __future__ import annotations

import time

import pytest

from tests.faults import workloads
from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.faults

SUBSCRIBERS = 2000
FEEDS = 100
OUTAGE_SECONDS = 8


def test_workers_and_gateway_ride_out_a_postgres_crash(faults):
    city_page = f"/api/v1/cities/{workloads.add_known_cities(faults)['Ruritania Falls']}"
    assert faults.get(city_page).status_code == 200
    notifier = faults.engines["notifier"]
    with FeedServer() as server:
        posts = workloads.start_polling_cycle(faults, server, FEEDS)
        addresses = workloads.start_digest_send(faults, SUBSCRIBERS)
        workloads.wait_until_under_way(
            lambda: workloads.mail_count(faults), SUBSCRIBERS, "the send"
        )

        at_crash = len(faults.mail.received), faults.count("blog", workloads.POSTS)
        faults.postgres.stop("immediate")
        crashed = time.monotonic()
        answers = {}
        while time.monotonic() - crashed < OUTAGE_SECONDS:
            for path in (city_page, "/api/v1/posts", "/api/v1/cities?q=Zenda"):
                answers.setdefault(path, set()).add(faults.get(path).status_code)
        faults.postgres.start()
        back = time.monotonic()
        assert answers[city_page] == {503}, answers
        assert answers["/api/v1/posts"] == {503}, answers
        assert answers["/api/v1/cities?q=Zenda"] == {200}, answers  # the index is in memory

        wait_for(lambda: faults.get(city_page).status_code == 200, timeout=60,
                 what="the city page once PostgreSQL is back")  # fmt: skip
        reconnected = time.monotonic() - back
        wait_for(lambda: workloads.digests_sent(notifier) == SUBSCRIBERS, timeout=180,
                 what="every digest to be sent")  # fmt: skip
        wait_for(lambda: faults.count("blog", workloads.POSTS) == posts, timeout=120,
                 what="every post to be stored")  # fmt: skip
    workloads.assert_each_post_announced_once(faults, posts)
    workloads.assert_each_digest_once(faults, addresses)
    faults.say(
        f"postgres crash: down {OUTAGE_SECONDS} s with {at_crash[0]} of {SUBSCRIBERS} digests "
        f"and {at_crash[1]} of {posts} posts done; the gateway answered "
        f"{sorted(answers[city_page])} for a city page meanwhile, 200 again {reconnected:.1f} s "
        "after the start; every digest once, every post once"
    )
