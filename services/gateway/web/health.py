"""Liveness, readiness and metrics.

Readiness answers are reused for ``READY_SECONDS`` in each process: each asks every service's
worker for a ping (three tasks queued), and a flood of /readyz must not become a flood of
tasks. /metrics tells how the site is used: only Prometheus, with ``METRICS_TOKEN``, reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Float, Integer, Nested, String
from flask import current_app

from services.gateway.clients import metrics, redis_client, service_client
from services.gateway.web.metrics_auth import metrics_auth
from shared.errors import ServiceError
from shared.logs import get_logger
from shared.routing import BACKGROUND, SERVICES, lane_queues

bp = APIBlueprint("health", __name__, tag="Health")
log = get_logger(__name__)

READY_SECONDS = 1.0
READINESS = "sistercities_readiness"  # its key in app.extensions


class Remembered:
    """Each check's last answer, reused for ``seconds``. Callers that come while a check runs
    wait for its answer rather than start their own."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._locks: dict[str, threading.Lock] = {}
        self._answers: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, check: Callable[[], Any]) -> Any:
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            until, answer = self._answers.get(name, (0.0, None))
            if time.monotonic() < until:
                return answer
            answer = check()
            self._answers[name] = (time.monotonic() + self.seconds, answer)
            return answer


@bp.record_once
def _remember_readiness(state) -> None:
    state.app.extensions[READINESS] = Remembered(READY_SECONDS)


def _remembered(name: str, check: Callable[[], Any]) -> Any:
    return current_app.extensions[READINESS].get(name, check)


class Healthz(Schema):
    status = String(required=True, metadata={"example": "ok"})


class Dependency(Schema):
    status = String(required=True, metadata={"description": "ok or unavailable"})
    ms = Float(allow_none=True, metadata={"description": "round trip in milliseconds"})
    message = String(metadata={"description": "why it is unavailable"})


class Backlog(Schema):
    waiting = Integer(
        allow_none=True,
        metadata={"description": "messages waiting in the lane's queue (null: Redis is away)"},
    )


class Readyz(Schema):
    status = String(required=True, metadata={"description": "ready or unavailable"})
    redis = Nested(Dependency, required=True)
    services = Dict(
        keys=String(),
        values=Nested(Dependency),
        required=True,
        metadata={"description": "each service's interactive lane: does it answer a ping"},
    )
    background = Dict(
        keys=String(),
        values=Nested(Backlog),
        required=True,
        metadata={
            "description": (
                "each service's background lane: how far behind it is "
                "(never a reason to be unavailable)"
            )
        },
    )


@bp.get("/healthz")
@bp.output(Healthz)
@bp.doc(summary="The gateway process is up")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
@bp.output(Readyz)
@bp.doc(
    summary="Redis answers and every service's interactive workers answer a ping; each "
    "background lane's backlog",
    responses={503: "Redis or a service's interactive lane is unavailable"},
)
def readyz():
    return _remembered("all", _readiness)


def _readiness() -> tuple[dict, int]:
    """Ready when a visitor's calls are answered: the interactive lanes. A background lane
    behind (an import's events) is reported, and taking the site out of service for it would
    turn a slow background into an outage."""
    redis_status, backlog = _check_redis()
    services: dict[str, dict] = {}
    if redis_status["status"] == "ok":
        # Sent together, so a missing service costs one timeout, not one per service.
        outcomes = service_client().call_many(
            [(f"{service}.ping_service", (), {}) for service in SERVICES]
        )
        for service, (outcome, seconds) in zip(SERVICES, outcomes, strict=True):
            if isinstance(outcome, ServiceError):
                services[service] = {
                    "status": "unavailable",
                    "ms": None,
                    "message": outcome.message,
                }
            else:
                services[service] = {"status": "ok", "ms": round(seconds * 1000, 2)}
    else:
        services = {
            service: {"status": "unavailable", "ms": None, "message": "Redis is unavailable"}
            for service in SERVICES
        }
    ready = redis_status["status"] == "ok" and all(
        entry["status"] == "ok" for entry in services.values()
    )
    body = {
        "status": "ready" if ready else "unavailable",
        "redis": redis_status,
        "services": services,
        "background": {service: {"waiting": backlog.get(service)} for service in SERVICES},
    }
    return body, 200 if ready else 503


class ServiceReady(Dependency):
    """One service's readiness (its own name in the document, apart from the nested use)."""


@bp.get("/readyz/<any(directory, blog, notifier):service>")
@bp.output(ServiceReady)
@bp.doc(
    summary="One service's interactive workers answer a ping: its round trip in ms",
    responses={503: "The service did not answer in time"},
)
def service_ready(service: str):
    return _remembered(service, lambda: _service_readiness(service))


def _service_readiness(service: str) -> tuple[dict, int]:
    [(outcome, seconds)] = service_client().call_many([(f"{service}.ping_service", (), {})])
    if isinstance(outcome, ServiceError):
        return {"status": "unavailable", "ms": None, "message": outcome.message}, 503
    return {"status": "ok", "ms": round(seconds * 1000, 2)}, 200


def _check_redis() -> tuple[dict, dict[str, int]]:
    """Redis' round trip, and the messages waiting in each service's background queue (read
    in the same round trip)."""
    started = time.monotonic()
    pipe = redis_client().pipeline(transaction=False)
    pipe.ping()
    queues = [
        (service, queue) for service in SERVICES for queue in lane_queues(service, BACKGROUND)
    ]
    for _service, queue in queues:
        pipe.llen(queue)
    try:
        _pong, *lengths = pipe.execute()
    except Exception as error:
        log.warning("redis_ping_failed", error=str(error))
        return {"status": "unavailable", "ms": None, "message": "Redis does not answer"}, {}
    status = {"status": "ok", "ms": round((time.monotonic() - started) * 1000, 2)}
    waiting = dict.fromkeys(SERVICES, 0)
    for (service, _queue), length in zip(queues, lengths, strict=True):
        waiting[service] += length
    return status, waiting


PROMETHEUS_TEXT = {
    "description": "Prometheus' text format",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


@bp.get("/metrics")
@bp.auth_required(metrics_auth)
@bp.doc(
    summary="Prometheus metrics: requests and latency per route, task round trips",
    responses={200: PROMETHEUS_TEXT, 403: "METRICS_TOKEN is not set"},
)
def prometheus_metrics():
    return metrics().render()
