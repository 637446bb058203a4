"""Request ids, access logs and Prometheus metrics for the gateway."""

from __future__ import annotations

import random
import re
import time

import structlog
from flask import Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shared.logs import get_logger

log = get_logger("gateway.access")

REQUEST_ID_HEADER = "X-Request-ID"
# An id from outside is kept only if it is short and plain: it ends up in every log line.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self, multiprocess: bool = False) -> None:
        # Several gunicorn processes: each writes its values to files that the one answering
        # /metrics sums (prometheus_client's multiprocess mode, set up by the server).
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_requests_total",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.task_roundtrip = Histogram(
            "gateway_task_roundtrip_seconds",
            "Time from sending a service task to receiving its reply",
            ["task", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_task(self, task: str, seconds: float, outcome: str) -> None:
        self.task_roundtrip.labels(task=task, outcome=outcome).observe(seconds)

    def render(self) -> Response:
        registry = self.registry
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    def answered(
        self, method: str, route: str, path: str, status: int, seconds: float, **context: str
    ) -> None:
        """A request answered: counted, timed and logged (``context``: what the log line has
        not from its request's context, for a request answered outside Flask)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        log.info(
            "request",
            method=method,
            path=path,
            status=status,
            ms=round(seconds * 1000, 2),
            **context,
        )


def request_id(incoming: str) -> str:
    """The id of a request: the caller's, if short and plain, else 128 random bits in hex, as
    uuid4().hex gives. An id needs to be unique, not secret: no system call for it (the random
    module reseeds in each forked process)."""
    return incoming if VALID_REQUEST_ID.match(incoming) else f"{random.getrandbits(128):032x}"


def install_observability(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def start_request() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def finish_request(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        metrics.answered(request.method, route, _loggable(request), response.status_code, elapsed)
        return response

    @app.teardown_request
    def clear_context(_error) -> None:
        structlog.contextvars.clear_contextvars()


def _loggable(request) -> str:
    """The path, with the signed token of a mail link left out: whoever reads the logs must
    not be able to unsubscribe or reconfigure someone."""
    if request.view_args and "token" in request.view_args:
        return request.path.replace(request.view_args["token"], "<token>")
    return request.path
