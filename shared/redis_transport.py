"""kombu's Redis transport, keeping one client object per connection pool.

kombu builds a new ``redis.Redis`` for every publish and every acknowledgement. With redis-py
8 each construction copies about 170 response callbacks and costs some 0.3 ms of CPU: more
than the Redis commands it then sends. A ``redis.Redis`` is a thread-safe facade over its
pool, so one per pool does the same work. Selected by the ``scredis://`` broker scheme that
``shared.celery_app.broker_url`` writes.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

ALIAS = "scredis"


class Channel(kombu_redis.Channel):
    def _create_client(self, asynchronous: bool = False):
        pool = self.async_pool if asynchronous else self.pool
        cache = self.__dict__.setdefault("_clients_by_pool", {})
        cached = cache.get(asynchronous)
        # kombu replaces its pools after a connection error: never reuse a client of an old one.
        if cached is None or cached[0] is not pool:
            cached = cache[asynchronous] = (pool, super()._create_client(asynchronous))
        return cached[1]


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
