"""The gateway's connections, made once per app in ``create_app`` and reached from views."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from services.gateway.cache import ResponseCache
from services.gateway.config import GatewaySettings
from services.gateway.observability import Metrics
from shared.rpc import ServiceClient


@dataclass
class GatewayClients:
    settings: GatewaySettings
    redis: redis.Redis
    services: ServiceClient
    metrics: Metrics
    cache: ResponseCache

    @classmethod
    def connect(cls, settings: GatewaySettings, shared_metrics: bool = False) -> GatewayClients:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=1,
            # Replies are awaited with BLPOP: the socket must outwait the longest call.
            socket_timeout=settings.service_timeout + 5,
            health_check_interval=30,
        )
        metrics = Metrics(multiprocess=shared_metrics)
        services = ServiceClient(client, settings.service_timeout, observe=metrics.observe_task)
        cache = ResponseCache(client, settings.cache_seconds, enabled=settings.cache_seconds > 0)
        return cls(settings=settings, redis=client, services=services, metrics=metrics, cache=cache)


def _clients() -> GatewayClients:
    return current_app.extensions["sistercities"]


def settings() -> GatewaySettings:
    return _clients().settings


def redis_client() -> redis.Redis:
    return _clients().redis


def service_client() -> ServiceClient:
    return _clients().services


def cache() -> ResponseCache:
    return _clients().cache


def metrics() -> Metrics:
    return _clients().metrics
