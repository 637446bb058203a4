"""The one way a process opens a redis-py client: to the one server a ``redis://``,
``rediss://`` or ``unix://`` URL names, or to whichever server Redis Sentinel says is the
master now, for a ``sentinel://`` URL.

A Sentinel URL lists every sentinel in kombu's notation (what Celery's broker reads too)::

    sentinel://[:password@]host:26379[/db];sentinel://[:password@]host2:26379[/db];...

The password and database are the master's, and every address must carry the same ones: kombu
moves to the next address when one sentinel is down and would lose what only the first said.

After a failover a client reaches the new master by itself: redis-py's Sentinel pool asks the
sentinels for the master's address whenever it connects, and drops a connection to a master
that was demoted (its READONLY error becomes a ConnectionError). Commands that fail that way
are retried here a few times with a short backoff, so a call that meets the old master in the
moment of a failover usually succeeds on the new one; one that still fails raises, and each
caller decides (the gateway answers 503, a task is retried, the relay tries its batch again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "sentinel"
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_SENTINEL_MASTER = "mymaster"

# Connection errors only (refused, reset, no master known yet, a demoted master): retrying a
# timeout would make a caller that already waited a socket timeout wait several more.
# About 1.5 s of backoff in all; redis-py's own default for a pool's connections is no retry.
RETRY_ATTEMPTS = 5


def _retry() -> Retry:
    return Retry(
        ExponentialWithJitterBackoff(cap=0.5, base=0.05),
        RETRY_ATTEMPTS,
        supported_errors=(redis.exceptions.ConnectionError,),
    )


# Sentinels answer one small command each; they are asked again on every new connection.
SENTINEL_SOCKET_TIMEOUT = 1.0


@dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    db: int


def is_sentinel_url(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Raise ``ValueError`` saying what is wrong (never quoting a password)."""
    sentinels: list[tuple[str, int]] = []
    credentials: set[tuple[str | None, str | None, int]] = set()
    for number, address in enumerate(url.split(";"), start=1):
        parts = urlsplit(address.strip())
        if parts.scheme != SENTINEL_SCHEME:
            raise ValueError(f"address {number} of a sentinel URL does not start with sentinel://")
        try:
            port = parts.port or DEFAULT_SENTINEL_PORT
        except ValueError:
            raise ValueError(f"address {number} of the sentinel URL has a bad port") from None
        if not parts.hostname:
            raise ValueError(f"address {number} of the sentinel URL names no host")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"address {number} of the sentinel URL: the database must be a number")
        if parts.query or parts.fragment:
            raise ValueError(f"address {number} of the sentinel URL has a query or fragment")
        sentinels.append((parts.hostname, port))
        credentials.add(
            (
                unquote(parts.username) if parts.username else None,
                unquote(parts.password) if parts.password else None,
                int(path or 0),
            )
        )
    if len(credentials) > 1:
        raise ValueError(
            "every address of the sentinel URL must carry the same password and database "
            "(kombu moves to the next address when a sentinel is down)"
        )
    [(username, password, db)] = credentials
    return SentinelURL(tuple(sentinels), username, password, db)


def connect(url: str, master_name: str = DEFAULT_SENTINEL_MASTER, **kwargs: Any) -> redis.Redis:
    """A client for ``url`` (``master_name`` is used only for a sentinel URL); ``kwargs`` are
    redis-py's connection options (timeouts, health checks)."""
    kwargs.setdefault("retry", _retry())
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **kwargs)
    parsed = parse_sentinel_url(url)
    sentinel = Sentinel(
        parsed.sentinels,
        sentinel_kwargs={
            "socket_timeout": SENTINEL_SOCKET_TIMEOUT,
            "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT,
        },
    )
    return sentinel.master_for(
        master_name,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        **kwargs,
    )
