"""Our kombu Redis transport: an acknowledgement that cannot reach Redis must not keep its
message's place in the prefetch window (a full window of such places stopped a worker for good
after a Redis restart; tests/faults/test_redis_restarts.py shows it end to end)."""

from types import SimpleNamespace
from unittest.mock import Mock

import pytest
import redis
from kombu.transport import virtual

from shared.redis_transport import QoS


def unreachable(_tag):
    def execute():
        raise redis.exceptions.ConnectionError("Error 111 connecting: Connection refused.")

    return SimpleNamespace(execute=execute)


@pytest.fixture
def full_window() -> QoS:
    qos = QoS(Mock(), prefetch_count=1)
    virtual.QoS.append(qos, Mock(), "tag-1")  # kombu's own bookkeeping, no Redis
    qos._remove_from_indices = unreachable
    assert not qos.can_consume()
    return qos


def test_an_ack_that_cannot_reach_redis_frees_its_place_and_still_fails(full_window):
    with pytest.raises(redis.exceptions.ConnectionError):
        full_window.ack("tag-1")
    assert full_window.can_consume()


def test_a_reject_that_cannot_reach_redis_frees_its_place_and_still_fails(full_window):
    with pytest.raises(redis.exceptions.ConnectionError):
        full_window.reject("tag-1", requeue=False)
    assert full_window.can_consume()
