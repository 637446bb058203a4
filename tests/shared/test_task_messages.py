"""Our hand-built task message (``shared/task_messages.py``) against the one Celery builds for
the same call: sent with Celery's own ``send_task`` to the tests' real Redis, under a key
prefix no worker reads, taken back raw from the queue and compared field by field. When this
fails after a Celery or kombu upgrade, the message format has moved: follow it, then move the
pins in pyproject.toml (docs/performance.md says why they are pinned)."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.celery_app import broker_url, make_celery
from shared.rpc import REPLY_HEADER, REQUEST_ID_HEADER
from shared.settings import CommonSettings, EnvReader
from shared.task_messages import task_message

TASK = "directory.search_cities"
ARGS = [3, "minnea"]
KWARGS = {"q": "minnea", "limit": 5, "home": None}
EXPIRES_IN = 2.5
# What shared.rpc puts in every message's headers.
HEADERS = {REPLY_HEADER: "sistercities:reply:abc", REQUEST_ID_HEADER: "req-1"}

# Headers Celery writes that ours leaves out; the worker reads each with this default.
CELERY_ONLY_HEADERS = {"replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}
# Celery's address for results: there is no result backend (replies go through shared.rpc).
CELERY_ONLY_PROPERTIES = {"reply_to"}
# Different in every message: the task's id (also its root and correlation id), the
# transport's delivery tag, and the expiry (now + EXPIRES_IN, checked apart).
PER_MESSAGE_HEADERS = {"id", "root_id", "expires"}
PER_MESSAGE_PROPERTIES = {"correlation_id", "delivery_tag"}


@pytest.fixture(params=["our transport", "stock kombu"])
def celery_message(request, backends, redis_client, tmp_path):
    """(queue, raw message, time before sending, time after) as Celery sends ``TASK`` with our
    settings, through our Redis transport and through kombu's own. Its Redis keys carry a
    prefix of this test's own, so no worker of the stack takes the message."""
    settings = CommonSettings(
        **CommonSettings.read(
            EnvReader({"REDIS_URL": backends.redis_url, "DATA_DIR": str(tmp_path)})
        )
    )
    app = make_celery("message-probe", settings)
    if request.param == "stock kombu":
        app.conf.broker_url = broker_url(backends.redis_url).replace("scredis", "redis", 1)
    prefix = f"test-message-{uuid.uuid4().hex[:10]}:"
    app.conf.broker_transport_options = {"global_keyprefix": prefix}
    try:
        before = datetime.now(UTC)
        app.send_task(
            TASK, args=ARGS, kwargs=KWARGS, expires=EXPIRES_IN, headers=HEADERS, ignore_result=True
        )
        after = datetime.now(UTC)
        lists = [
            key for key in redis_client.scan_iter(f"{prefix}*") if redis_client.type(key) == b"list"
        ]
        (queue,) = lists
        raw = redis_client.lpop(queue)
        yield queue.decode().removeprefix(prefix), raw, before, after
    finally:
        app.close()
        keys = list(redis_client.scan_iter(f"{prefix}*"))
        if keys:
            redis_client.delete(*keys)


def ours() -> tuple[str, bytes, datetime, datetime]:
    before = datetime.now(UTC)
    queue, raw = task_message(TASK, ARGS, KWARGS, HEADERS, expires_in=EXPIRES_IN)
    return queue, raw, before, datetime.now(UTC)


def test_our_message_goes_to_the_queue_celery_routes_the_task_to(celery_message):
    assert ours()[0] == celery_message[0] == "directory"


def test_our_envelope_has_celerys_fields_in_its_order_with_properties_last(celery_message):
    # The transport's take script (shared/redis_transport.py) finds the delivery tag by
    # reading the message's tail: "properties" must come last in both.
    mine, celerys = json.loads(ours()[1]), json.loads(celery_message[1])
    assert (
        list(mine)
        == list(celerys)
        == [
            "body",
            "content-encoding",
            "content-type",
            "headers",
            "properties",
        ]
    )
    assert mine["content-type"] == celerys["content-type"] == "application/json"
    assert mine["content-encoding"] == celerys["content-encoding"] == "utf-8"


def test_our_body_is_celerys_byte_for_byte(celery_message):
    mine, celerys = json.loads(ours()[1]), json.loads(celery_message[1])
    assert mine["body"] == celerys["body"]
    assert json.loads(base64.b64decode(mine["body"])) == [
        ARGS,
        KWARGS,
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]


def test_our_headers_are_celerys_field_by_field(celery_message):
    mine = json.loads(ours()[1])["headers"]
    celerys = json.loads(celery_message[1])["headers"]
    assert set(celerys) - set(mine) == set(CELERY_ONLY_HEADERS)
    assert set(mine) <= set(celerys)
    for name in set(mine) - PER_MESSAGE_HEADERS:
        assert mine[name] == celerys[name], name
    for name, default in CELERY_ONLY_HEADERS.items():
        assert celerys[name] == default, name
    for headers in (mine, celerys):
        assert headers["root_id"] == headers["id"] == str(uuid.UUID(headers["id"]))


def test_our_properties_are_celerys_field_by_field(celery_message):
    mine, celerys = json.loads(ours()[1]), json.loads(celery_message[1])
    names = [name for name in celerys["properties"] if name not in CELERY_ONLY_PROPERTIES]
    assert list(mine["properties"]) == names
    for name in set(names) - PER_MESSAGE_PROPERTIES:
        assert mine["properties"][name] == celerys["properties"][name], name
    for message in (mine, celerys):
        properties = message["properties"]
        assert properties["correlation_id"] == message["headers"]["id"]
        assert str(uuid.UUID(properties["delivery_tag"])) == properties["delivery_tag"]


def test_our_expiry_is_written_as_celery_writes_it(celery_message):
    """The same form (ISO 8601 with the UTC offset), each ``EXPIRES_IN`` from its sending."""
    for _queue, raw, before, after in (ours(), celery_message):
        expires = datetime.fromisoformat(json.loads(raw)["headers"]["expires"])
        assert expires.utcoffset() == timedelta(0)
        window = timedelta(seconds=EXPIRES_IN)
        assert before + window <= expires <= after + window
