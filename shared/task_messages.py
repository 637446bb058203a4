"""Celery task messages written straight onto a service's Redis queue.

The gateway sends one small task per web request and waits for the answer; Celery's
``send_task`` spends more CPU on routing, signals and producer pools than the Redis command
itself costs (figures in docs/performance.md). This module builds the same message — Celery's
message protocol v2 inside kombu's Redis envelope, the format workers consume — so it can be
pushed in the same round trip as the wait for the reply (``shared.rpc``). Tests run it
against real workers and compare it with the message Celery itself builds
(tests/shared/test_task_messages.py), and pyproject.toml pins Celery and kombu to the
versions those tests cover; anything sent any other way goes through Celery as usual.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.routing import queue_for_task

ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
REPR_LIMIT = 256
# Keyword arguments that hold secrets (a password, a sign-in link's or a session's token):
# the message's description of its arguments, which workers may log, leaves their values out.
SECRET_KWARGS = frozenset({"password", "token"})


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def task_message(
    task_name: str,
    args: list | tuple,
    kwargs: dict,
    headers: dict[str, Any],
    expires_in: float,
) -> tuple[str, bytes]:
    """Return (queue key, serialized message) for one task, expiring ``expires_in`` s from now."""
    task_id = str(uuid.uuid4())
    queue = queue_for_task(task_name)
    expires = datetime.now(UTC) + timedelta(seconds=expires_in)
    body = json.dumps([list(args), kwargs, EMBED]).encode()
    message = {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task_name,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": expires.isoformat(),
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": _short_repr(list(args)),
            "kwargsrepr": _short_repr(
                {
                    name: "<secret>" if name in SECRET_KWARGS else value
                    for name, value in kwargs.items()
                }
            ),
            "origin": ORIGIN,
            "ignore_result": True,
            **headers,
        },
        "properties": {
            "correlation_id": task_id,
            "delivery_mode": 2,
            "expiration": str(int(expires_in * 1000)),
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return queue, json.dumps(message).encode()
