"""Answers cached in Redis, per generation: when an event moves a generation (the relay bumps
its counter on delivery), every answer cached under the old one is stale at once. One round
trip reads the generation and the answer together."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import redis

from shared.logs import get_logger
from shared.routing import GENERATION_KEY

log = get_logger(__name__)

CACHE_PREFIX = "sistercities:cache:"


class ResponseCache:
    """Serialized answers (JSON text) by name and parameters, stored with the generation they
    were made in; a hit is returned as it was stored, without parsing or serializing again."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, enabled: bool = True):
        self.redis = client
        self.ttl = ttl_seconds
        self.enabled = enabled

    def get_or_call(
        self, generation: str, name: str, params: dict[str, Any], produce: Callable[[], str]
    ) -> str:
        if not self.enabled:
            return produce()
        digest = hashlib.sha1(
            json.dumps(params, sort_keys=True).encode(), usedforsecurity=False
        ).hexdigest()
        key = f"{CACHE_PREFIX}{name}:{digest}"
        try:
            current, cached = self.redis.mget(GENERATION_KEY.format(generation), key)
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
            return produce()
        current = int(current or 0)
        if cached is not None:
            stored_generation, _, body = cached.decode().partition("\n")
            if int(stored_generation) == current:
                return body
        body = produce()
        try:
            self.redis.set(key, f"{current}\n{body}", ex=self.ttl)
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
        return body
