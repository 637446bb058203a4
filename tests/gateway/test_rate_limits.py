"""The gateway's rate limiter, counting in a real Redis."""

import uuid

import pytest
import redis

from services.gateway.rate_limits import RateLimiter, parse_rules


@pytest.fixture
def limiter(redis_client):
    prefix = f"test:limits:{uuid.uuid4().hex}"
    yield RateLimiter(redis_client, {"search": "3/second;5/minute", "send": "1/hour"}, prefix)
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


def test_each_limit_refuses_past_its_amount_until_its_window_ends(limiter):
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


def test_clients_and_scopes_have_budgets_of_their_own(limiter):
    now = 1_800_000_100.0
    assert limiter.hit("send", "10.0.0.1", now) is None
    assert limiter.hit("send", "10.0.0.1", now).retry_after == 3600 - 100 % 3600
    assert limiter.hit("send", "10.0.0.2", now) is None
    assert limiter.hit("search", "10.0.0.1", now) is None


def test_an_unreachable_redis_lets_requests_through():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RateLimiter(dead, {"search": "1/hour"})
    assert [limiter.hit("search", "10.0.0.1") for _ in range(3)] == [None, None, None]


def test_the_notation_is_the_limits_packages():
    assert [(rule.amount, rule.seconds) for rule in parse_rules("20/second;600/minute")] == [
        (20, 1),
        (600, 60),
    ]
    with pytest.raises(ValueError):
        parse_rules("twenty a second")
