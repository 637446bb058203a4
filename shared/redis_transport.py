"""kombu's Redis transport, with messages that a killed worker cannot lose and one client object
per connection pool.

**Taking a message.** kombu takes a message with BRPOP and only then, in a second round trip,
records it among the unacknowledged (the ``unacked`` hash and its ``unacked_index``, from which
a message whose worker died is handed out again after the visibility timeout). A worker killed
between the two has taken the message out of its queue and recorded it nowhere: it is lost (a
kill in a polling cycle lost a fetch about one time in six; kombu issue #305). Here the wait
and the take are apart: the worker waits, without taking anything, until its queue holds a
message (BLMOVE of the queue onto itself), then takes one with a script that moves it from the
queue into the unacknowledged in one step inside Redis. Whatever instant the worker dies at,
the message is in its queue or among the unacknowledged.

A worker that consumes several queues (BRPOP wakes for any of its keys, BLMOVE for one) first
asks which of them holds a message, in the order it takes from (kombu's round robin or
priority order), and waits on that one: the wait returns at once and the take follows
kombu's order, as BRPOP would. Waiting on an idle queue while another held a backlog took
from the backlog once a ``brpop_timeout`` (1 s), and never while the waited queue kept
receiving: a worker consuming its interactive queue first handled no background message in
ten minutes of ten calls a second. Only when every queue is empty does it wait on the first
it consumes (a lane's own queue: the notifier's events, not its awaited mail), so a message
arriving on another then waits at most ``brpop_timeout``.

**Restoring.** kombu lets one worker at a time hand out the unacknowledged messages of dead
workers, under a lock that expires after ``unacked_mutex_expire`` (5 minutes by default): a
worker killed while holding it stopped every restore for 5 minutes. ``shared.celery_app`` sets
it to a few seconds; two restorers at once are safe (each message is moved in a transaction
that watches the hash).

**One client per pool.** kombu builds a new ``redis.Redis`` for every publish and every
acknowledgement, and each construction copies redis-py's response callbacks: more CPU than
the Redis commands it then sends. A ``redis.Redis`` is a thread-safe facade over its pool, so
one per pool does the same work. Selected by the ``scredis://`` broker scheme that
``shared.celery_app.broker_url`` writes; behind Redis Sentinel by ``sentinel://`` URLs
themselves (below).
"""

from __future__ import annotations

from queue import Empty
from time import monotonic, time

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

ALIAS = "scredis"

# KEYS: the queue lists in the order to take from, then the unacked hash and its index.
# ARGV: the time to index the message at (the worker's clock, as kombu's restore reads it).
# The delivery tag, exchange and routing key are read from the message's "properties", which
# kombu and shared.task_messages write last; only a message written otherwise is decoded whole.
TAKE_SCRIPT = """
local index_key, hash_key = KEYS[#KEYS], KEYS[#KEYS - 1]
for i = 1, #KEYS - 2 do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local tail, from = string.sub(item, -2048), nil
    local at = string.find(tail, '"properties"', 1, true)
    while at do
      from = at
      at = string.find(tail, '"properties"', at + 1, true)
    end
    local tag, exchange, routing_key
    if from then
      local properties = string.sub(tail, from)
      tag = string.match(properties, '"delivery_tag"%s*:%s*"([^"]*)"')
      exchange = string.match(properties, '"exchange"%s*:%s*"([^"]*)"')
      routing_key = string.match(properties, '"routing_key"%s*:%s*"([^"]*)"')
    end
    if not (tag and exchange and routing_key) then
      local properties = cjson.decode(item)['properties']
      tag = properties['delivery_tag']
      exchange = properties['delivery_info']['exchange']
      routing_key = properties['delivery_info']['routing_key']
    end
    redis.call('ZADD', index_key, ARGV[1], tag)
    redis.call('HSET', hash_key, tag,
      '[' .. item .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
    return {KEYS[i], item}
  end
end
return false
"""

# KEYS: the queue lists in the order to take from. The first that holds a message, if any.
READY_SCRIPT = """
for i = 1, #KEYS do
  if redis.call('LLEN', KEYS[i]) > 0 then return KEYS[i] end
end
return false
"""


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

    def append(self, message, delivery_tag):
        """A message taken by ``TAKE_SCRIPT`` is already recorded in Redis."""
        if self.channel.taken.pop(delivery_tag, False):
            virtual.QoS.append(self, message, delivery_tag)
        else:
            super().append(message, delivery_tag)

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


class TakeWithoutLoss:
    """kombu's BRPOP replaced by a wait that takes nothing and a take that records the message
    among the unacknowledged in the same step (the module docstring says why)."""

    _waiting_on: str | None = None
    _taking = False

    @property
    def taken(self) -> dict:
        return self.__dict__.setdefault("_taken", {})

    @property
    def no_ack_queues(self) -> set:
        return self.__dict__.setdefault("_no_ack_queues", set())

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if no_ack:
            self.no_ack_queues.add(queue)
        else:
            self.no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def _keys(self, queues: list[str]) -> list[str]:
        """The lists of ``queues`` in the order BRPOP would take from them."""
        return [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]

    def _script(self, name: str, source: str):
        """A script registered on the current client (kombu replaces it after an error)."""
        script = self.__dict__.get(name)
        if script is None or script.registered_client is not self.client:
            script = self.__dict__[name] = self.client.register_script(source)
        return script

    def _brpop_start(self, timeout=None):
        # A key prefix changes every key name, and a consumer without acknowledgements has no
        # unacknowledged to record: kombu's own way serves both.
        self._taking = not self.global_keyprefix and not (
            self.no_ack_queues & set(self.active_queues)
        )
        if not self._taking:
            return super()._brpop_start(timeout)
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        key = self._q_for_pri(queues[0], 0)
        if len(queues) > 1:  # wait on one that holds a message (the module docstring says why)
            ready = self._script("_ready", READY_SCRIPT)(keys=self._keys(queues))
            # All empty: the first queue as consumed (a lane's own queue), not the round
            # robin's, which moves on each take: a lane's messages then wake it at once.
            first = next((queue for queue in self._active_queues if queue in queues), queues[0])
            key = ready or self._q_for_pri(first, 0)
        # The queue's list is moved onto itself: BLMOVE waits for a message and changes nothing.
        self._waiting_on = bytes_to_str(key)
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()
        wait = timeout if timeout is not None else self.brpop_timeout
        self.client.connection.send_command("BLMOVE", key, key, "RIGHT", "RIGHT", wait or 0)

    def _brpop_read(self, **options):
        if not self._taking:
            return super()._brpop_read(**options)
        try:
            try:
                self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()
        # Woken (or timed out): take from every queue in kombu's order, as BRPOP would.
        queues = self._queue_cycle.consume(len(self.active_queues))
        take = self._script("_take", TAKE_SCRIPT)
        keys = [*self._keys(queues), self.unacked_key, self.unacked_index_key]
        taken = take(keys=keys, args=[time()])
        if not taken:
            raise Empty()
        key, item = taken
        dest = bytes_to_str(key).rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(dest)
        payload = loads(bytes_to_str(item))
        self.taken[payload["properties"]["delivery_tag"]] = True
        self.connection._deliver(payload, dest)
        return True


class Channel(OneClientPerPool, TakeWithoutLoss, kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(OneClientPerPool, TakeWithoutLoss, kombu_redis.SentinelChannel):
    QoS = QoS


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
# kombu's own Sentinel transport, one client per pool. It must answer to the "sentinel" scheme
# itself: kombu reads the sentinels from the URLs of that scheme only, and names the transport
# after the scheme again whenever it moves on to the next sentinel (Connection.switch).
TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"
