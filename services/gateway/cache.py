"""Answers cached per generation: when an event moves a generation (the relay bumps its
counter on delivery; the directory bumps it when its search index reloads), every answer
cached under the old one is stale at once.

Two levels. Redis holds the answers every gateway process shares. Each process also keeps the
hottest answers in memory, valid while a background thread, reading the generation counters a
few times a second, sees them unchanged: a hot query then costs no round trip at all, and a
change is seen within ``POLL_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis

from shared.logs import get_logger
from shared.routing import GENERATION_KEY

log = get_logger(__name__)

CACHE_PREFIX = "sistercities:cache:"
POLL_SECONDS = 0.25
LOCAL_ENTRIES = 4096


class ResponseCache:
    """Serialized answers (JSON text) by name and parameters; a hit is returned as stored,
    without parsing or serializing again."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, enabled: bool = True):
        self.redis = client
        self.ttl = ttl_seconds
        self.enabled = enabled
        self._local: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._poller_pid: int | None = None

    def peek(self, generation: str, alias: str) -> str | None:
        """The answer last given to exactly this request (its raw path and query), if it is
        still current: lets a hot request skip even the parsing of its arguments."""
        if not self.enabled or self._poller_pid != os.getpid():
            return None
        known = self._generations.get(generation)
        local = self._local.get(alias)
        if known is not None and local is not None and local[0] == known:
            return local[1]
        return None

    def get_or_call(
        self,
        generation: str,
        name: str,
        params: dict[str, Any],
        produce: Callable[[], str],
        alias: str | None = None,
    ) -> str:
        """``alias``: also remember the answer under this raw request key (see ``peek``)."""
        if not self.enabled:
            return produce()
        body, made_in = self._get_or_call(generation, name, params, produce)
        if alias is not None and made_in is not None:
            self._remember(alias, made_in, body)
        return body

    def _get_or_call(
        self, generation: str, name: str, params: dict[str, Any], produce: Callable[[], str]
    ) -> tuple[str, int | None]:
        """The answer and the generation it belongs to (None when Redis could not say)."""
        self._ensure_poller()
        digest = hashlib.sha1(
            json.dumps(params, sort_keys=True).encode(), usedforsecurity=False
        ).hexdigest()
        key = f"{CACHE_PREFIX}{name}:{digest}"
        known = self._generations.get(generation)
        local = self._local.get(key)
        if known is not None and local is not None and local[0] == known:
            return local[1], known
        try:
            current, cached = self.redis.mget(GENERATION_KEY.format(generation), key)
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
            return produce(), None
        current = int(current or 0)
        self._generations.setdefault(generation, current)
        if cached is not None:
            stored, _, body = cached.decode().partition("\n")
            if int(stored) == current:
                self._remember(key, current, body)
                return body, current
        body = produce()
        try:
            self.redis.set(key, f"{current}\n{body}", ex=self.ttl)
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
        self._remember(key, current, body)
        return body, current

    def forget_local(self) -> None:
        """Drop this process's memory level at once, rather than within ``POLL_SECONDS``: for
        a change made beside the services (a database emptied or restored by hand)."""
        with self._lock:
            self._local.clear()
            self._generations = {}

    def _remember(self, key: str, generation: int, body: str) -> None:
        with self._lock:
            self._local[key] = (generation, body)
            self._local.move_to_end(key)
            while len(self._local) > LOCAL_ENTRIES:
                self._local.popitem(last=False)

    def _ensure_poller(self) -> None:
        # One thread per process (gunicorn forks its workers after this object may exist).
        if self._poller_pid == os.getpid():
            return
        with self._lock:
            if self._poller_pid != os.getpid():
                self._poller_pid = os.getpid()
                self._generations = {}
                threading.Thread(target=self._poll, name="cache-generations", daemon=True).start()

    def _poll(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            names = list(self._generations)
            if not names:
                continue
            try:
                values = self.redis.mget([GENERATION_KEY.format(name) for name in names])
            except redis.exceptions.RedisError:
                # Without fresh counters the memory level must not answer.
                self._generations = {}
                continue
            self._generations = {
                name: int(value or 0) for name, value in zip(names, values, strict=True)
            }
