"""Answers cached per generation: when a change moves a generation (the changes and the
generations they move are listed in ``shared/routing.py``), every answer cached under the old
one is stale at once.

Two levels. Redis holds the answers every gateway process shares. Each process also keeps the
hottest answers in memory, valid while a background thread, reading the generation counters a
few times a second, sees them unchanged: a hot query then costs no round trip at all, and a
change is seen within ``POLL_SECONDS``.

Whole pages (``web/page_cache.py``) are kept the same way, each with the values of every
generation it was made from: a page shows what several services answered.
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
from shared.routing import GENERATION_KEY, SERVICES

log = get_logger(__name__)

CACHE_PREFIX = "sistercities:cache:"
POLL_SECONDS = 0.25
LOCAL_ENTRIES = 4096
PAGE_PREFIX = "sistercities:page:"
# Pages are tens of kilobytes each: fewer of them stay in each process's memory.
LOCAL_PAGES = 512


class ResponseCache:
    """Serialized answers (JSON text) by name and parameters; a hit is returned as stored,
    without parsing or serializing again."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, enabled: bool = True):
        self.redis = client
        self.ttl = ttl_seconds
        self.enabled = enabled
        # key -> (generation, its value when the answer was made, the answer)
        self._local: OrderedDict[str, tuple[str, int, str]] = OrderedDict()
        # page key -> ((generation, its value), ...) the page was made from, the page
        self._pages: OrderedDict[str, tuple[tuple[tuple[str, int], ...], str]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._poller_pid: int | None = None

    def peek(self, alias: str) -> str | None:
        """The answer last given to exactly this request (its raw path and query), if it is
        still current: lets a hot request skip even the parsing of its arguments."""
        if not self.enabled or self._poller_pid != os.getpid():
            return None
        local = self._local.get(alias)
        if local is not None and self._generations.get(local[0]) == local[1]:
            return local[2]
        return None

    def answer(
        self,
        generation: str,
        name: str,
        params: dict[str, Any],
        produce: Callable[[], str],
        alias: str | None = None,
    ) -> tuple[str, int | None]:
        """The cached answer, else ``produce``'s, and the value of the generation it belongs
        to (None when it was not cached: the cache is off, or Redis could not say).
        ``alias``: also remember the answer under this raw request key (see ``peek``)."""
        if not self.enabled:
            return produce(), None
        body, made_in = self._get_or_call(generation, name, params, produce)
        if alias is not None and made_in is not None:
            self._remember(alias, generation, made_in, body)
        return body, made_in

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
        if known is not None and local is not None and local[1] == known:
            return local[2], known
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
                self._remember(key, generation, current, body)
                return body, current
        body = produce()
        try:
            self.redis.set(key, f"{current}\n{body}", ex=self.ttl)
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
        self._remember(key, generation, current, body)
        return body, current

    def kept_page(self, key: str) -> str | None:
        """The page under ``key`` in this process's memory, if no generation it was made from
        has moved since (no round trip: None when only Redis could say)."""
        if not self.enabled or self._poller_pid != os.getpid():
            return None
        local = self._pages.get(key)
        if local is not None and all(
            self._generations.get(name) == value for name, value in local[0]
        ):
            return local[1]
        return None

    def page(self, key: str) -> str | None:
        """The page stored under ``key``, if no generation it was made from has moved since."""
        if not self.enabled:
            return None
        self._ensure_poller()
        kept = self.kept_page(key)
        if kept is not None:
            return kept
        try:
            *values, stored = self.redis.mget(
                [GENERATION_KEY.format(name) for name in SERVICES] + [PAGE_PREFIX + key]
            )
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
            return None
        current = {name: int(value or 0) for name, value in zip(SERVICES, values, strict=True)}
        for name, value in current.items():
            self._generations.setdefault(name, value)
        if stored is None:
            return None
        head, _, page = stored.decode().partition("\n")
        made_from = _generations_from(head)
        if any(current.get(name) != value for name, value in made_from):
            return None
        self._remember_page(key, made_from, page)
        return page

    def store_page(self, key: str, made_from: dict[str, int], page: str) -> None:
        """Keep ``page``, made from these values of its generations, shared and in memory."""
        if not self.enabled:
            return
        generations = tuple(sorted(made_from.items()))
        head = ",".join(f"{name}={value}" for name, value in generations)
        try:
            self.redis.set(PAGE_PREFIX + key, f"{head}\n{page}", ex=self.ttl)
        except redis.exceptions.RedisError as error:
            log.warning("cache_unavailable", error=str(error))
            return
        self._remember_page(key, generations, page)

    def forget_local(self) -> None:
        """Drop this process's memory level at once, rather than within ``POLL_SECONDS``: for
        a change made beside the services (a database emptied or restored by hand)."""
        with self._lock:
            self._local.clear()
            self._pages.clear()
            self._generations = {}

    def _remember_page(self, key: str, generations: tuple[tuple[str, int], ...], page: str) -> None:
        with self._lock:
            self._pages[key] = (generations, page)
            self._pages.move_to_end(key)
            while len(self._pages) > LOCAL_PAGES:
                self._pages.popitem(last=False)

    def _remember(self, key: str, generation: str, value: int, body: str) -> None:
        with self._lock:
            self._local[key] = (generation, value, body)
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


def _generations_from(head: str) -> tuple[tuple[str, int], ...]:
    """``directory=3,blog=7`` as ((name, value), ...)."""
    pairs = (part.partition("=") for part in head.split(",") if part)
    return tuple((name, int(value)) for name, _, value in pairs)
