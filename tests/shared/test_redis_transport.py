"""Our kombu Redis transport: an acknowledgement that cannot reach Redis must not keep its
message's place in the prefetch window (a full window of such places stopped a worker for good
after a Redis restart; tests/faults/test_redis_restarts.py shows it end to end); a consumer
killed at any instant leaves each message it took in its queue or among the unacknowledged; a
restorer killed holding kombu's restore lock holds back restores only briefly; and what it
delivers, and in which order, is what kombu's own transport delivers."""

import json
import signal
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace
from unittest.mock import Mock

import pytest
import redis
from kombu import Connection, Queue
from kombu.transport import virtual
from kombu.utils.json import loads

from shared import redis_transport
from shared.celery_app import broker_url, make_celery
from shared.redis_transport import QoS
from shared.settings import ServiceSettings


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


# --- Taking a message: no instant at which a killed consumer loses it ---------------------------

# A consumer in its own process that kills itself at one exact step: "deliver" right after the
# transport took a message from its queue (before the worker saw it), "restore" while it holds
# the lock under which the unacknowledged of dead workers are handed out again.
KILLED_CONSUMER = """
import json, os, signal, sys
from kombu import Connection, Queue
from kombu.transport import redis as kombu_redis, virtual
import shared.redis_transport

url, queue, step, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

with Connection(url, transport_options=options) as connection:
    if step == "deliver":
        virtual.Transport._deliver = die
        connection.SimpleQueue(queue).get(timeout=10)
    else:
        kombu_redis.QoS.restore_by_tag = die
        connection.default_channel.qos.restore_visible(interval=1)
sys.exit(3)
"""


@pytest.fixture
def keys(backends, redis_client):
    """Per-test names for a queue and kombu's unacknowledged bookkeeping (the stack's workers
    share this Redis database), removed at the end."""
    token = uuid.uuid4().hex[:10]
    names = {
        "queue": f"test-take-{token}",
        "unacked_key": f"test-unacked-{token}",
        "unacked_index_key": f"test-unacked-index-{token}",
        "unacked_mutex_key": f"test-unacked-mutex-{token}",
    }
    yield names
    redis_client.delete(*names.values())


def transport_url(backends, scheme: str) -> str:
    """Our transport's URL for the test Redis (TCP or, embedded, a Unix socket), or stock
    kombu's ("redis")."""
    ours = broker_url(backends.redis_url)
    return ours if scheme == "scredis" else ours.replace(redis_transport.ALIAS, "redis", 1)


def options_of(keys: dict, **more) -> dict:
    return {name: value for name, value in keys.items() if name != "queue"} | more


def publish(backends, keys, body: dict) -> None:
    with Connection(transport_url(backends, "scredis")) as connection:
        queue = connection.SimpleQueue(keys["queue"])
        queue.put(body)
        queue.close()


def run_killed_consumer(backends, keys, scheme: str, step: str, **options) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_CONSUMER,
            transport_url(backends, scheme),
            keys["queue"],
            step,
            json.dumps(options_of(keys, **options)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def unacknowledged(redis_client, keys) -> list[str]:
    tags = redis_client.hkeys(keys["unacked_key"])
    assert sorted(tags) == sorted(redis_client.zrange(keys["unacked_index_key"], 0, -1))
    return tags


def restore_and_get(backends, keys, **options) -> dict:
    with Connection(
        transport_url(backends, "scredis"), transport_options=options_of(keys, **options)
    ) as connection:
        connection.default_channel.qos.restore_visible(interval=1)
        queue = connection.SimpleQueue(keys["queue"])
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
        return message.payload


def test_a_consumer_killed_right_after_taking_a_message_leaves_it_to_be_handed_out_again(
    backends, redis_client, keys
):
    publish(backends, keys, {"fetch": 7})
    run_killed_consumer(backends, keys, "scredis", "deliver")
    assert redis_client.llen(keys["queue"]) == 0
    assert len(unacknowledged(redis_client, keys)) == 1
    assert restore_and_get(backends, keys, visibility_timeout=0) == {"fetch": 7}
    assert unacknowledged(redis_client, keys) == []


def test_stock_kombu_loses_a_message_taken_by_a_consumer_killed_at_that_instant(
    backends, redis_client, keys
):
    """Why the transport takes messages its own way (kombu issue #305). When this fails after a
    kombu upgrade, kombu takes and records in one step, and TakeWithoutLoss can go."""
    publish(backends, keys, {"fetch": 7})
    run_killed_consumer(backends, keys, "redis", "deliver")
    assert redis_client.llen(keys["queue"]) == 0
    assert unacknowledged(redis_client, keys) == []


def test_a_restorer_killed_holding_the_restore_lock_holds_back_restores_only_briefly(
    backends, redis_client, keys, tmp_path
):
    settings = ServiceSettings.from_env(
        "blog", {"DATA_DIR": str(tmp_path), "TASK_VISIBILITY_TIMEOUT": "8"}
    )
    expire = make_celery("check", settings).conf.broker_transport_options["unacked_mutex_expire"]
    assert expire <= settings.task_visibility_timeout / 4
    publish(backends, keys, {"fetch": 8})
    run_killed_consumer(backends, keys, "scredis", "deliver")
    run_killed_consumer(
        backends, keys, "scredis", "restore", visibility_timeout=0, unacked_mutex_expire=expire
    )
    # The dead restorer's lock stands, for no longer than the configured expiry.
    assert 0 < redis_client.ttl(keys["unacked_mutex_key"]) <= expire
    assert len(unacknowledged(redis_client, keys)) == 1
    deadline = time.monotonic() + expire + 10
    while redis_client.exists(keys["unacked_mutex_key"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert restore_and_get(backends, keys, visibility_timeout=0) == {"fetch": 8}


def test_the_unacknowledged_record_reads_back_as_kombus_own(backends, redis_client, keys):
    """The take script writes kombu's record (message, exchange, routing key) itself; restoring
    reads it with kombu's code, so it must decode to what kombu's QoS.append writes."""
    records = {}
    for scheme in ("redis", "scredis"):
        publish(backends, keys, {"same": "body"})
        with Connection(
            transport_url(backends, scheme), transport_options=options_of(keys)
        ) as connection:
            queue = connection.SimpleQueue(keys["queue"])
            message = queue.get(timeout=5)
            (record,) = redis_client.hvals(keys["unacked_key"])
            message.ack()
            queue.close()
        decoded = loads(record)
        decoded[0]["properties"].pop("delivery_tag")
        records[scheme] = decoded
    assert records["scredis"] == records["redis"]


# --- The same work as kombu's own transport, seen from outside ---------------------------------


def consume_everything(backends, keys, scheme: str, published: int) -> list[tuple[str, dict]]:
    """Every message of two queues, as one consumer of both takes them through ``scheme``:
    (queue, body) in the order delivered, each acknowledged, the first one first requeued."""
    queues = [Queue(keys["queue"]), Queue(keys["queue"] + "-other")]
    taken: list[tuple[str, dict]] = []
    requeued = False

    def on_message(body, message):
        nonlocal requeued
        if not requeued:
            requeued = True
            message.requeue()
            return
        taken.append((message.delivery_info["routing_key"], body))
        message.ack()

    with Connection(
        transport_url(backends, scheme), transport_options=options_of(keys)
    ) as connection:
        with connection.Producer() as producer:
            for n in range(published):
                queue = queues[n % 3 == 0]
                producer.publish(
                    {"n": n}, routing_key=queue.name, declare=[queue], priority=(n * 7) % 10
                )
        with connection.Consumer(queues, callbacks=[on_message], prefetch_count=1):
            while len(taken) < published:
                connection.drain_events(timeout=10)
    return taken


def test_our_transport_delivers_what_kombus_does_in_the_same_order(backends, redis_client, keys):
    """Priorities, two queues taken in turn, a requeued message: the same deliveries as stock
    kombu's, and afterwards nothing left in the queues or among the unacknowledged."""
    published = 12
    deliveries = {}
    for scheme in ("redis", "scredis"):
        deliveries[scheme] = consume_everything(backends, keys, scheme, published)
        assert redis_client.keys(keys["queue"] + "*") == []
        assert unacknowledged(redis_client, keys) == []
    assert sorted(body["n"] for _queue, body in deliveries["redis"]) == list(range(published))
    assert deliveries["scredis"] == deliveries["redis"]


@pytest.fixture
def waits(monkeypatch) -> list[str]:
    """The list each wait of our transport is recorded in: the queue list it waits on."""
    waited: list[str] = []
    start = redis_transport.TakeWithoutLoss._brpop_start

    def recorded(channel, timeout=None):
        start(channel, timeout)
        waited.append(channel._waiting_on)

    monkeypatch.setattr(redis_transport.TakeWithoutLoss, "_brpop_start", recorded)
    return waited


@pytest.mark.parametrize("order", ["round_robin", "priority"])
def test_a_consumer_of_two_queues_waits_on_the_one_that_holds_messages(
    backends, redis_client, keys, waits, order
):
    """A backlog on one queue while the first in the consumer's order is empty: every wait is
    on the backlog's queue and returns at once. Waiting on the empty queue took from the
    backlog once a ``brpop_timeout``, and in priority order never while the waited queue kept
    receiving (ten interactive calls a second starved a notifier consuming both of its lanes:
    no event handled in ten minutes)."""
    empty, busy = Queue(keys["queue"] + "-empty"), Queue(keys["queue"])
    taken: list[int] = []
    options = options_of(keys, queue_order_strategy=order)
    with Connection(transport_url(backends, "scredis"), transport_options=options) as connection:
        with connection.Producer() as producer:
            for n in range(6):
                producer.publish({"n": n}, routing_key=busy.name, declare=[busy, empty])

        def on_message(body, message):
            taken.append(body["n"])
            message.ack()

        with connection.Consumer([empty, busy], callbacks=[on_message], prefetch_count=1):
            while len(taken) < 6:
                connection.drain_events(timeout=10)
    redis_client.delete(busy.name, empty.name)
    assert taken == list(range(6))
    assert waits[:6] == [busy.name] * 6, waits


def test_a_consumer_of_two_queues_both_empty_waits_on_the_first_it_consumes(
    backends, redis_client, keys, waits
):
    """Both queues empty after a take from the first: the wait is on the first queue as
    consumed (a lane's own), where kombu's round robin has moved it to the back. A message on
    the queue not waited on waits up to ``brpop_timeout``: every event of the notifier's
    background lane did, once its awaited-mail queue came first after each take, and an
    event a test caused was then handled after the next test had begun."""
    own, other = Queue(keys["queue"]), Queue(keys["queue"] + "-other")
    taken: list[int] = []
    with Connection(
        transport_url(backends, "scredis"), transport_options=options_of(keys)
    ) as connection:
        with connection.Producer() as producer:
            producer.publish({"n": 1}, routing_key=own.name, declare=[own, other])

        def on_message(body, message):
            taken.append(body["n"])
            message.ack()

        with connection.Consumer([own, other], callbacks=[on_message], prefetch_count=1):
            connection.drain_events(timeout=10)
            with pytest.raises(TimeoutError):
                connection.drain_events(timeout=0.2)
    redis_client.delete(own.name, other.name)
    assert taken == [1]
    assert waits[1] == own.name, waits
