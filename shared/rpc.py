"""Calling a service's task and waiting for its answer, lean enough for a web request.

Stock Celery RPC (``send_task(...).get()`` with the Redis result backend) stores the result
under a key, publishes it on a channel the caller subscribed to, and costs about 18 Redis
commands per call. Here the caller names a private reply list in the task's headers and
blocks on it with BLPOP; the worker pushes the answer there (one pipelined LPUSH + EXPIRE)
and nothing else is stored. The task is pushed and the wait begins in one pipelined round trip.
The message carries ``expires``, so a worker that comes back after the caller gave up
discards it instead of doing stale work.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis
import structlog
from celery import Task, states

from shared.actor import ACTOR_HEADER, current_actor
from shared.errors import ServiceError, ServiceUnavailable
from shared.logs import get_logger
from shared.routing import service_of
from shared.task_messages import task_message

REPLY_HEADER = "reply_key"
REQUEST_ID_HEADER = "request_id"
REPLY_PREFIX = "sistercities:reply:"
# A reply nobody collects (the caller timed out) disappears after this long.
REPLY_TTL_SECONDS = 60

log = get_logger(__name__)


def send_reply(client: redis.Redis, task: Task, retval: Any, state: str) -> None:
    """Worker side (task_postrun): push the outcome to the caller's reply list, if any."""
    reply_key = task.request.get(REPLY_HEADER)
    if not reply_key or state == states.RETRY:
        return
    if state == states.SUCCESS:
        reply = {"ok": True, "result": retval}
    elif isinstance(retval, ServiceError):
        reply = {"ok": False, "error": retval.to_dict()}
    else:
        reply = {
            "ok": False,
            "error": {"code": "internal", "message": f"{task.name} failed unexpectedly"},
        }
    try:
        payload = json.dumps(reply)
    except (TypeError, ValueError):
        payload = json.dumps(
            {"ok": False, "error": {"code": "internal", "message": "unserializable result"}}
        )
    _push_reply(client)(keys=[reply_key], args=[payload, REPLY_TTL_SECONDS])


# One command instead of a pipeline of two: the reply and its expiry travel together.
_PUSH_REPLY = "redis.call('LPUSH', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[1], ARGV[2])"


@functools.cache
def _push_reply(client: redis.Redis):
    return client.register_script(_PUSH_REPLY)


class ServiceClient:
    """Caller side: send a task by name and wait for its reply, at most ``timeout`` seconds.

    The task message is pushed onto the service's queue and the wait for the reply starts in
    the same pipelined round trip to Redis.
    """

    def __init__(
        self,
        client: redis.Redis,
        timeout: float,
        observe: Callable[[str, float, str], None] | None = None,
    ):
        self.redis = client
        self.timeout = timeout
        # observe(task_name, seconds, outcome): round-trip times for the caller's metrics
        self.observe = observe

    def call(self, task_name: str, *args: Any, timeout: float | None = None, **kwargs: Any):
        [(outcome, _seconds)] = self.call_many([(task_name, args, kwargs)], timeout=timeout)
        if isinstance(outcome, ServiceError):
            raise outcome
        return outcome

    def call_many(
        self,
        calls: Iterable[tuple[str, tuple, dict]],
        timeout: float | None = None,
    ) -> list[tuple[Any, float]]:
        """Send every call, then collect the replies: the waits overlap.

        Returns, per call, the task's result or the ``ServiceError`` it ended with, and the
        seconds from sending to the reply.
        """
        timeout = self.timeout if timeout is None else timeout
        calls = list(calls)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        headers = {REQUEST_ID_HEADER: request_id, ACTOR_HEADER: current_actor()}
        reply_keys = [REPLY_PREFIX + uuid.uuid4().hex for _ in calls]
        started = time.monotonic()
        pipe = self.redis.pipeline(transaction=False)
        for (task_name, args, kwargs), reply_key in zip(calls, reply_keys, strict=True):
            queue, message = task_message(
                task_name,
                args,
                kwargs,
                {**headers, REPLY_HEADER: reply_key},
                expires_in=timeout,
            )
            pipe.lpush(queue, message)
        # The first wait rides along with the sends.
        pipe.blpop([reply_keys[0]], timeout=timeout)
        try:
            first_reply = pipe.execute()[-1]
        except redis.exceptions.RedisError as error:
            log.warning("task_send_failed", tasks=[c[0] for c in calls], error=str(error))
            unavailable = ServiceUnavailable("the message queue cannot be reached")
            return [(unavailable, 0.0) for _ in calls]
        deadline = started + timeout
        outcomes = []
        for index, ((task_name, _args, _kwargs), reply_key) in enumerate(
            zip(calls, reply_keys, strict=True)
        ):
            reply = first_reply if index == 0 else self._wait(task_name, reply_key, deadline)
            outcome = _outcome(task_name, reply, timeout)
            seconds = time.monotonic() - started
            if self.observe is not None:
                label = outcome.code if isinstance(outcome, ServiceError) else "ok"
                self.observe(task_name, seconds, label)
            outcomes.append((outcome, seconds))
        return outcomes

    def _wait(self, task_name: str, reply_key: str, deadline: float):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # Time is up, but a reply may already be there: take it without waiting.
            item = self.redis.lpop(reply_key)
            return None if item is None else (reply_key, item)
        try:
            return self.redis.blpop([reply_key], timeout=remaining)
        except redis.exceptions.RedisError as error:
            log.warning("reply_wait_failed", task=task_name, error=str(error))
            return None


def _outcome(task_name: str, item: tuple | None, timeout: float):
    if item is None:
        service = service_of(task_name)
        return ServiceUnavailable(f"the {service} service did not answer within {timeout:g} s")
    reply = json.loads(item[1])
    if reply["ok"]:
        return reply["result"]
    error = reply["error"]
    return ServiceError(error["code"], error["message"])
