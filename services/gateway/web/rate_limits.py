"""Per-client rate limits, counted in each gateway process and shared through Redis.

Fixed windows: one counter per client, limit and window, named after the window so it never
needs resetting. A request is counted in this process's memory, against what Redis last said
every process had counted plus what this one counted since; a background thread adds this
process's new counts to Redis every ``SYNC_SECONDS`` in one pipelined round trip and reads the
totals back. So a request costs no round trip (counting in Redis on every request cost as
much CPU as the rest of a cached answer), one process alone counts exactly, and several
processes together may let through what they admit within one sync period before they hear
of one another: at most ``SYNC_SECONDS`` of a client's requests to each process. A Redis
that cannot be reached leaves each process counting for itself.
"""

from __future__ import annotations

import ipaddress
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import redis
from limits import parse_many

from shared.logs import get_logger

log = get_logger(__name__)

KEY_PREFIX = "sistercities:limits"
SYNC_SECONDS = 0.1
# Counters kept in memory at most; past it (a flood from very many addresses) a new client's
# requests are counted in Redis at once rather than growing the table.
MAX_COUNTERS = 100_000

# The budgets per client address, each named by the setting that holds it.
SEARCH = "search_rate_limit"
SUBSCRIBE = "subscribe_rate_limit"
# Wrong admin tokens, counted by ``admin_token.py`` rather than per route.
SIGN_IN = "sign_in_rate_limit"
SCOPES = (SEARCH, SUBSCRIBE, SIGN_IN)


@dataclass(frozen=True)
class Declared:
    scope: str
    methods: frozenset[str] | None  # None: every method counts


def rate_limited(scope: str, methods: Iterable[str] | None = None) -> Callable:
    """Declares, at the route, that each request counts against ``scope``'s budget for its
    client: routes declared with the same scope share one budget (the API route and the page
    that do the same thing). ``methods``: only those count (a form's GET is free). Put it
    right under the route's ``@bp.get``/``@bp.route``."""
    declared = Declared(scope, frozenset(methods) if methods is not None else None)

    def declare(view: Callable) -> Callable:
        view.rate_limit = declared
        return view

    return declare


def declared_limits(view_functions: Mapping[str, Callable]) -> dict[str, Declared]:
    """Each rate-limited endpoint and what its route declared."""
    return {
        endpoint: view.rate_limit
        for endpoint, view in view_functions.items()
        if isinstance(getattr(view, "rate_limit", None), Declared)
    }


@dataclass(frozen=True)
class Rule:
    amount: int
    seconds: int
    text: str  # "20 per 1 second"


@dataclass(frozen=True)
class Refusal:
    rule: Rule
    retry_after: int  # seconds until the window that refused ends


def client_key(address: str | None) -> str:
    """Whom a request is counted against: an IPv4 address, or an IPv6 client's /64 (one
    subscriber line gets a whole /64, so counting per address would give one client 2**64
    budgets). An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) counts as its IPv4."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def parse_rules(text: str) -> tuple[Rule, ...]:
    """``"20/second;600/minute"`` (the notation of the ``limits`` package). Raises ValueError."""
    return tuple(Rule(item.amount, item.get_expiry(), str(item)) for item in parse_many(text))


class _Counter:
    __slots__ = ("ends", "shared", "unsent")

    def __init__(self, ends: float):
        self.unsent = 0  # counted here, not yet added in Redis
        self.shared = 0  # the total in Redis when last read (every process's)
        self.ends = ends


class RateLimiter:
    """Budgets by scope (``{"search": "20/second;600/minute"}``): a client's requests in any
    endpoint of a scope count against the same budget."""

    def __init__(
        self,
        client: redis.Redis,
        budgets: dict[str, str],
        prefix: str = KEY_PREFIX,
        sync_seconds: float = SYNC_SECONDS,
    ):
        self.redis = client
        self.rules = {scope: parse_rules(text) for scope, text in budgets.items()}
        self.prefix = prefix
        self.sync_seconds = sync_seconds
        self._counters: dict[str, _Counter] = {}
        self._lock = threading.Lock()
        self._syncer_pid: int | None = None

    def hit(self, scope: str, client_id: str, now: float | None = None) -> Refusal | None:
        """Count one request; the refusal if it goes over a limit (the refused request counts
        too: hammering buys nothing)."""
        if self._syncer_pid != os.getpid():
            self._start_syncer()
        now = time.time() if now is None else now
        refusals = []
        with self._lock:
            for rule in self.rules[scope]:
                window = int(now // rule.seconds)
                key = f"{self.prefix}:{scope}:{rule.seconds}:{window}:{client_id}"
                counter = self._counters.get(key)
                if counter is None:
                    ends = (window + 1) * rule.seconds
                    if len(self._counters) >= MAX_COUNTERS:
                        counter = self._count_in_redis(key, ends)
                    else:
                        counter = self._counters[key] = _Counter(ends)
                counter.unsent += 1
                if counter.shared + counter.unsent > rule.amount:
                    refusals.append(Refusal(rule, max(1, math.ceil(counter.ends - now))))
        return max(refusals, key=lambda refusal: refusal.retry_after, default=None)

    def refund(self, scope: str, client_id: str, now: float) -> None:
        """Take back a request ``hit`` counted at ``now``: a budget of failures is then
        counted before each attempt (so parallel attempts cannot outrun it) and refunded
        for those that succeed."""
        with self._lock:
            for rule in self.rules[scope]:
                key = f"{self.prefix}:{scope}:{rule.seconds}:{int(now // rule.seconds)}:{client_id}"
                counter = self._counters.get(key)
                if counter is not None:
                    counter.unsent -= 1

    def sync(self, now: float | None = None) -> None:
        """Add this process's new counts in Redis and read every process's totals back;
        forget the windows that have ended."""
        now = time.time() if now is None else now
        with self._lock:
            for key in [key for key, counter in self._counters.items() if counter.ends <= now]:
                del self._counters[key]
            sending = [(key, c, c.unsent) for key, c in self._counters.items() if c.unsent]
        if not sending:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, counter, count in sending:
            pipe.incrby(key, count)
            pipe.expireat(key, int(counter.ends) + 1)
        try:
            totals = pipe.execute()[0::2]
        except redis.RedisError as error:
            log.warning("rate_limits_not_shared", error=str(error))
            return
        with self._lock:
            for (_key, counter, count), total in zip(sending, totals, strict=True):
                counter.unsent -= count
                counter.shared = total

    def _count_in_redis(self, key: str, ends: int) -> _Counter:
        """A counter outside the table: its total read from Redis, this request added."""
        counter = _Counter(ends)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expireat(key, ends + 1)
            counter.shared = pipe.execute()[0] - 1  # hit() adds this request
        except redis.RedisError:
            pass
        return counter

    def _start_syncer(self) -> None:
        with self._lock:
            if self._syncer_pid == os.getpid():
                return
            # After a fork the parent's counts are the parent's to send.
            self._counters.clear()
            self._syncer_pid = os.getpid()
        threading.Thread(target=self._sync_forever, name="rate-limits", daemon=True).start()

    def _sync_forever(self) -> None:
        pid = os.getpid()
        while self._syncer_pid == pid:
            time.sleep(self.sync_seconds)
            try:
                self.sync()
            except Exception:  # the thread must outlive any one failure
                log.exception("rate_limits_sync_failed")
