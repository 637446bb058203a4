"""One holder at a time: the lock several beats share (``shared.leader_lock``)."""

import time
import uuid

import pytest
import redis

from shared.leader_lock import LeaderLock


@pytest.fixture
def key(redis_client):
    name = f"sistercities:test-lock:{uuid.uuid4().hex}"
    yield name
    redis_client.delete(name)


def test_one_holder_at_a_time_and_a_release_hands_it_on(redis_client, key):
    first, second = LeaderLock(redis_client, key, 10), LeaderLock(redis_client, key, 10)
    assert first.hold() and first.held
    assert not second.hold() and not second.held
    assert first.hold(), "the holder renews"
    assert redis_client.get(key).decode() == first.token
    assert 9000 < redis_client.pttl(key) <= 10000
    first.release()
    assert not first.held
    assert second.hold()
    assert not first.hold()


def test_a_holder_that_stops_renewing_loses_the_lock_after_its_ttl(redis_client, key):
    dead, standby = LeaderLock(redis_client, key, 0.5), LeaderLock(redis_client, key, 0.5)
    assert dead.hold()
    assert not standby.hold()
    time.sleep(0.6)
    assert not dead.held, "it stops counting itself the holder before the server forgets it"
    assert standby.hold()
    assert not dead.hold()


def test_a_holder_cut_off_from_redis_holds_only_until_the_lock_may_have_expired(redis_client, key):
    lock = LeaderLock(redis_client, key, 0.5)
    assert lock.hold()

    def unreachable(**_kwargs):
        raise redis.exceptions.ConnectionError("Redis is down")

    lock._take_or_renew = unreachable
    assert lock.hold(), "unknown, and the lock cannot have expired yet"
    time.sleep(0.5)
    assert not lock.hold()
