"""Calling a service's task and waiting for its answer, lean enough for a web request.

Stock Celery RPC (``send_task(...).get()`` with the Redis result backend) stores the result
under a key, publishes it on a channel the caller subscribed to, and costs about 18 Redis
commands per call. Here the caller names a private reply list in the task's headers and
blocks on it with BLPOP; the worker pushes the answer there (one pipelined LPUSH + EXPIRE)
and nothing else is stored. The message carries ``expires``, so a worker that comes back after
the caller gave up discards it instead of doing stale work.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis
import structlog
from celery import Celery, Task, states
from kombu.exceptions import OperationalError as KombuOperationalError

from shared.errors import ServiceError, ServiceUnavailable
from shared.logs import get_logger
from shared.routing import queue_for_task

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
    pipe = client.pipeline(transaction=False)
    pipe.lpush(reply_key, payload)
    pipe.expire(reply_key, REPLY_TTL_SECONDS)
    pipe.execute()


class ServiceClient:
    """Caller side: send a task by name and wait for its reply, at most ``timeout`` seconds."""

    def __init__(
        self,
        app: Celery,
        client: redis.Redis,
        timeout: float,
        observe: Callable[[str, float, str], None] | None = None,
    ):
        self.app = app
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
        """Send every call first, then collect the replies: the waits overlap.

        Returns, per call, the task's result or the ``ServiceError`` it ended with, and the
        seconds from sending to the reply.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        started = time.monotonic()
        pending: list[tuple[str, str] | ServiceError] = []
        for task_name, args, kwargs in calls:
            reply_key = REPLY_PREFIX + uuid.uuid4().hex
            try:
                self.app.send_task(
                    task_name,
                    args=list(args),
                    kwargs=kwargs,
                    queue=queue_for_task(task_name),
                    headers={REPLY_HEADER: reply_key, REQUEST_ID_HEADER: request_id},
                    expires=timeout,
                    retry=False,
                )
                pending.append((task_name, reply_key))
            except (KombuOperationalError, redis.exceptions.RedisError, OSError) as error:
                log.warning("task_send_failed", task=task_name, error=str(error))
                pending.append(ServiceUnavailable("the message queue cannot be reached"))
        outcomes = []
        for item in pending:
            if isinstance(item, ServiceError):
                outcomes.append((item, 0.0))
                continue
            outcome = self._wait(*item, deadline, timeout)
            seconds = time.monotonic() - started
            if self.observe is not None:
                label = outcome.code if isinstance(outcome, ServiceError) else "ok"
                self.observe(item[0], seconds, label)
            outcomes.append((outcome, seconds))
        return outcomes

    def _wait(self, task_name: str, reply_key: str, deadline: float, timeout: float):
        service = queue_for_task(task_name)
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            item = self.redis.blpop([reply_key], timeout=remaining)
        except redis.exceptions.RedisError as error:
            log.warning("reply_wait_failed", task=task_name, error=str(error))
            return ServiceUnavailable("the message queue cannot be reached")
        if item is None:
            return ServiceUnavailable(f"the {service} service did not answer within {timeout:g} s")
        reply = json.loads(item[1])
        if reply["ok"]:
            return reply["result"]
        error = reply["error"]
        return ServiceError(error["code"], error["message"])
