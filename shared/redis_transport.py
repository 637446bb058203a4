"""kombu's Redis transport, keeping one client object per connection pool.

kombu builds a new ``redis.Redis`` for every publish and every acknowledgement. With redis-py
8 each construction copies about 170 response callbacks and costs some 0.3 ms of CPU: more
than the Redis commands it then sends. A ``redis.Redis`` is a thread-safe facade over its
pool, so one per pool does the same work. Selected by the ``scredis://`` broker scheme that
``shared.celery_app.broker_url`` writes; behind Redis Sentinel by ``sentinel://`` URLs
themselves (below).
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import redis as kombu_redis

ALIAS = "scredis"


class QoS(kombu_redis.QoS):
    """kombu's acknowledgements, but one that cannot reach Redis still frees its message's
    place in the prefetch window.

    kombu's ack (and reject) removes the message from Redis first and frees the place after;
    when Redis is away the first step raises and the place stays taken for good. A worker
    whose window fills so (long tasks running when Redis restarts: a digest send) stops asking
    Redis for work, so never reads from the dead connection, never reconnects, and consumes
    nothing again. Freed, the worker's next read fails and it reconnects. The message itself is
    still in Redis' unacked index when Redis kept it (append-only file on) and is delivered
    again after the visibility timeout: one more run, which every task allows.
    """

    def ack(self, delivery_tag):
        try:
            super().ack(delivery_tag)
        except BaseException:
            virtual.QoS.ack(self, delivery_tag)
            raise

    def reject(self, delivery_tag, requeue=False):
        try:
            super().reject(delivery_tag, requeue=requeue)
        except BaseException:
            virtual.QoS.ack(self, delivery_tag)
            raise


class OneClientPerPool:
    def _create_client(self, asynchronous: bool = False):
        pool = self.async_pool if asynchronous else self.pool
        cache = self.__dict__.setdefault("_clients_by_pool", {})
        cached = cache.get(asynchronous)
        # kombu replaces its pools after a connection error: never reuse a client of an old one.
        if cached is None or cached[0] is not pool:
            cached = cache[asynchronous] = (pool, super()._create_client(asynchronous))
        return cached[1]


class Channel(OneClientPerPool, kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(OneClientPerPool, kombu_redis.SentinelChannel):
    QoS = QoS


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
# kombu's own Sentinel transport, one client per pool. It must answer to the "sentinel" scheme
# itself: kombu reads the sentinels from the URLs of that scheme only, and names the transport
# after the scheme again whenever it moves on to the next sentinel (Connection.switch).
TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"
