"""The gateway's rate limiter: counted in each process, shared through a real Redis."""

import uuid

import pytest
import redis

from services.gateway.web.rate_limits import RateLimiter, parse_rules

BUDGETS = {"search": "3/second;5/minute", "send": "1/hour"}


@pytest.fixture
def prefix(redis_client):
    prefix = f"test:limits:{uuid.uuid4().hex}"
    yield prefix
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


def process(redis_client, prefix) -> RateLimiter:
    """One gateway process's limiter; the test syncs it by hand (the thread sleeps)."""
    return RateLimiter(redis_client, BUDGETS, prefix, sync_seconds=3600)


def test_each_limit_refuses_past_its_amount_until_its_window_ends(redis_client, prefix):
    limiter = process(redis_client, prefix)
    start = 1_800_000_020.25  # a quarter into a second, 20.25 s into a minute
    answers = [limiter.hit("search", "10.0.0.1", start) for _ in range(4)]
    assert answers[:3] == [None, None, None]
    assert answers[3].rule.text == "3 per 1 second" and answers[3].retry_after == 1
    # The next second has a fresh per-second budget; the minute's is spent after five.
    assert limiter.hit("search", "10.0.0.1", start + 1) is None
    refused = limiter.hit("search", "10.0.0.1", start + 2)
    assert refused.rule.text == "5 per 1 minute" and refused.retry_after == 38
    # The refused requests counted too: hammering does not buy anything.
    assert limiter.hit("search", "10.0.0.1", start + 60) is None


def test_clients_and_scopes_have_budgets_of_their_own(redis_client, prefix):
    limiter = process(redis_client, prefix)
    now = 1_800_000_100.0
    assert limiter.hit("send", "10.0.0.1", now) is None
    assert limiter.hit("send", "10.0.0.1", now).retry_after == 3600 - 100 % 3600
    assert limiter.hit("send", "10.0.0.2", now) is None
    assert limiter.hit("search", "10.0.0.1", now) is None


def test_processes_share_their_counts_through_redis(redis_client, prefix):
    first, second = process(redis_client, prefix), process(redis_client, prefix)
    now = 1_800_000_030.5
    assert first.hit("send", "10.0.0.9", now) is None
    first.sync(now)
    # The second process has not heard of the first's request until it syncs its own.
    assert second.hit("send", "10.0.0.9", now) is None
    second.sync(now)
    assert second.hit("send", "10.0.0.9", now) is not None
    assert int(redis_client.get(f"{prefix}:send:3600:{int(now // 3600)}:10.0.0.9")) == 2
    # The first learns the total with its next sync: from then on it refuses as well.
    first.hit("send", "10.0.0.9", now)
    first.sync(now)
    assert first.hit("send", "10.0.0.9", now) is not None
    # Ended windows are forgotten.
    first.sync(now + 3600)
    assert first._counters == {}


def test_without_redis_each_process_still_counts_for_itself():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RateLimiter(dead, {"search": "1/hour"}, sync_seconds=3600)
    answers = [limiter.hit("search", "10.0.0.1") for _ in range(3)]
    assert answers[0] is None and answers[1] is not None and answers[2] is not None
    limiter.sync()  # logs, does not raise; the counts wait for Redis to come back
    assert limiter.hit("search", "10.0.0.2") is None


def test_the_notation_is_the_limits_packages():
    assert [(rule.amount, rule.seconds) for rule in parse_rules("20/second;600/minute")] == [
        (20, 1),
        (600, 60),
    ]
    with pytest.raises(ValueError):
        parse_rules("twenty a second")
