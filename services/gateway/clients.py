"""The gateway's connections, made once per app in ``create_app``: Redis, the service clients
under ``calls.py``, the answer cache and the metrics."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from services.gateway.cache import ResponseCache
from services.gateway.config import GatewaySettings
from services.gateway.web.observability import Metrics
from shared.redis_connection import connect
from shared.rpc import ServiceClient

# Staff's partnership import of a whole MAX_BODY_BYTES file outlasts SERVICE_TIMEOUT by far:
# into an empty directory it creates thousands of places (docs/performance.md has the figures).
LONG_CALL_TIMEOUT = 300.0


@dataclass
class GatewayClients:
    settings: GatewaySettings
    redis: redis.Redis
    services: ServiceClient
    # For the few admin calls that take long; its own connections, whose socket outwaits the
    # longer wait (a blocked read would otherwise time out first and look like Redis down).
    long_calls: ServiceClient
    metrics: Metrics
    cache: ResponseCache

    @classmethod
    def connect(cls, settings: GatewaySettings, shared_metrics: bool = False) -> GatewayClients:
        client = connect(
            settings.redis_url,
            settings.redis_sentinel_master,
            socket_connect_timeout=1,
            # Replies are awaited with BLPOP: the socket must outwait the longest call.
            socket_timeout=settings.service_timeout + 5,
            health_check_interval=30,
        )
        metrics = Metrics(multiprocess=shared_metrics)
        services = ServiceClient(client, settings.service_timeout, observe=metrics.observe_task)
        # Never longer than the visibility timeout: a message still running then is handed to
        # a second worker, and the copy is discarded only if it has expired by that time.
        long_timeout = min(LONG_CALL_TIMEOUT, settings.task_visibility_timeout)
        long_calls = ServiceClient(
            connect(
                settings.redis_url,
                settings.redis_sentinel_master,
                socket_connect_timeout=1,
                socket_timeout=long_timeout + 5,
                health_check_interval=30,
            ),
            long_timeout,
            observe=metrics.observe_task,
        )
        cache = ResponseCache(client, settings.cache_seconds, enabled=settings.cache_seconds > 0)
        return cls(
            settings=settings,
            redis=client,
            services=services,
            long_calls=long_calls,
            metrics=metrics,
            cache=cache,
        )


def _clients() -> GatewayClients:
    return current_app.extensions["sistercities"]


def settings() -> GatewaySettings:
    return _clients().settings


def redis_client() -> redis.Redis:
    return _clients().redis


def service_client() -> ServiceClient:
    """The transport under ``calls.py``, which views use; the readiness checks ping through it."""
    return _clients().services


def metrics() -> Metrics:
    return _clients().metrics
