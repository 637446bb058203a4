"""The outbox relay: delivers committed events from each service's outbox to its consumers,
a batch of events (up to ``BATCH_SIZE``) in one message to each consumer's background lane.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several relays share the
work without sending a row twice while they live. A relay killed after sending and before
marking the rows sent leaves them unsent; the next pass sends them again and consumers drop
the duplicates by event id (``shared.events.handle_event_once``). Nothing committed is lost.
On SQLite a batch's transaction takes the write lock at its start (``shared.db``), so relays
there take turns: the second reads the rows after the first has marked them.

Behind Redis Sentinel the master acknowledges a message before its replica has it, and a
failover in between loses it. So there a batch is marked sent only once a replica holds its
messages (``WAIT``) and the master is still the one that took them; otherwise the rows stay
unsent and go again. And a relay that sees the master change sends the last
``RESEND_AFTER_FAILOVER`` of events again: a worker records that it took a message (kombu's
unacked copy) a moment after taking it, and a failover in that moment loses the message.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta

import redis
import sqlalchemy.exc
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import Engine, MetaData, delete, select, update
from sqlalchemy.orm import Session

from shared.events import envelope_of, event_tables, handled_table, outbox_table, utcnow
from shared.logs import get_logger
from shared.routing import CACHE_GENERATIONS, EVENT_ROUTES, GENERATION_KEY

WAKE_KEY = "sistercities:outbox:wake"
# Events relayed so far: a write in the same round trip as WAIT, which then covers it and
# every message sent before it (replication keeps the master's order).
RELAYED_KEY = "sistercities:outbox:relayed"
POLL_SECONDS = 1.0
REPLICATION_TIMEOUT_MS = 2000
RESEND_AFTER_FAILOVER = timedelta(minutes=1)
# Events a message: a consumer applies them in one transaction, which on SQLite holds its
# database's write lock meanwhile (an interactive write waits that long at most).
BATCH_SIZE = 500

log = get_logger(__name__)


def wake_relay(client: redis.Redis) -> None:
    """Nudge a waiting relay; the list never holds more than one token."""
    pipe = client.pipeline(transaction=False)
    pipe.lpush(WAKE_KEY, 1)
    pipe.ltrim(WAKE_KEY, 0, 0)
    pipe.execute()


class NotReplicated(Exception):
    """The batch's messages may not survive a failover: its rows stay unsent."""


class OutboxRelay:
    def __init__(
        self,
        app: Celery,
        sources: Mapping[str, Engine],
        client: redis.Redis,
        batch_size: int = BATCH_SIZE,
        replicas: int = 0,
    ):
        """``replicas``: how many Redis replicas must hold a batch's messages before its rows
        are marked sent (1 behind Sentinel; 0: the master's acknowledgement is enough)."""
        self.app = app
        self.sources = dict(sources)
        self.redis = client
        self.batch_size = batch_size
        self.replicas = replicas
        self.outbox = outbox_table(_tables_only())
        self._master: str | None = None

    def relay_once(self) -> int:
        """One pass over every source; returns how many events were sent."""
        if self.replicas:
            self._notice_failover()
        sent = 0
        for producer, engine in self.sources.items():
            while True:
                count = self._relay_batch(producer, engine)
                sent += count
                if count < self.batch_size:
                    break
        return sent

    def _relay_batch(self, producer: str, engine: Engine) -> int:
        outbox = self.outbox
        with engine.begin() as conn:
            query = (
                select(outbox)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self.batch_size)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).mappings().all()
            if not rows:
                return 0
            generations: set[str] = set()
            batches: dict[str, list[dict]] = {}
            for row in rows:
                envelope = envelope_of(row, producer)
                consumers = EVENT_ROUTES.get(row["event_type"], ())
                generation = CACHE_GENERATIONS.get(row["event_type"])
                if generation:
                    generations.add(generation)
                if not consumers and not generation:
                    log.error("event_has_no_route", event_type=row["event_type"])
                for consumer in consumers:
                    batches.setdefault(consumer, []).append(envelope)
            before = self._replication() if self.replicas else None
            with self.app.producer_or_acquire() as kombu_producer:
                for consumer, envelopes in batches.items():
                    # One message a consumer for the whole batch: the consumer handles it in
                    # one transaction (shared.events.handle_events_once).
                    self.app.send_task(
                        f"{consumer}.handle_events",
                        args=[envelopes],
                        task_id=f"{envelopes[0]['id']}+{len(envelopes)}.{consumer}",
                        producer=kombu_producer,
                    )
            self._after_sending(len(rows), generations, before)
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row["id"] for row in rows]))
                .values(sent_at=utcnow())
            )
        log.info("events_relayed", producer=producer, count=len(rows))
        return len(rows)

    def _replication(self) -> dict:
        return self.redis.info("replication")

    def _notice_failover(self) -> None:
        """After a failover, the last minute's events again (consumers drop duplicates)."""
        master = self._replication()["master_replid"]
        if self._master not in (None, master):
            since = utcnow() - RESEND_AFTER_FAILOVER
            for producer, engine in self.sources.items():
                with engine.begin() as conn:
                    count = conn.execute(
                        update(self.outbox)
                        .where(self.outbox.c.sent_at >= since)
                        .values(sent_at=None)
                    ).rowcount
                log.warning("events_resent_after_failover", producer=producer, count=count)
        self._master = master

    def _after_sending(self, count: int, generations: set[str], before: dict | None) -> None:
        """Move the cache generations the events make stale; with ``replicas``, raise
        ``NotReplicated`` unless the batch is safe from a failover. ``before``: the master's
        replication state when the batch began."""
        pipe = self.redis.pipeline(transaction=False)
        for generation in generations:
            pipe.incr(GENERATION_KEY.format(generation))
        if before is None:
            if generations:
                pipe.execute()
            return
        pipe.incrby(RELAYED_KEY, count)
        # With no replica attached there is nothing to wait for (and waiting would hold the
        # outbox's rows, on SQLite its whole database, for the timeout): as safe as a lone
        # Redis, and events keep flowing. A replica that comes back copies everything.
        waiting = min(self.replicas, before["connected_slaves"])
        if waiting:
            pipe.wait(waiting, REPLICATION_TIMEOUT_MS)
        pipe.info("replication")
        answers = pipe.execute()
        acknowledged, after = (answers[-2] if waiting else 0), answers[-1]
        if after["master_replid"] != before["master_replid"]:
            # A failover during the batch: what the old master took may be gone.
            raise NotReplicated("the Redis master changed while the batch was sent")
        if not waiting:
            log.warning("events_relayed_without_replica", count=count)
        elif acknowledged < waiting:
            raise NotReplicated(
                f"{acknowledged} of {waiting} replicas took the batch within "
                f"{REPLICATION_TIMEOUT_MS} ms"
            )

    def run(self, stop: threading.Event) -> None:
        backoff = POLL_SECONDS
        while not stop.is_set():
            try:
                sent = self.relay_once()
                backoff = POLL_SECONDS
                if sent == 0:
                    self.redis.blpop([WAKE_KEY], timeout=POLL_SECONDS)
            except (
                sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.InterfaceError,
                redis.exceptions.RedisError,
                KombuOperationalError,
                NotReplicated,
                OSError,
            ) as error:
                log.warning("relay_pass_failed", error=str(error), retry_in=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)


def _tables_only() -> MetaData:
    metadata = MetaData()
    event_tables(metadata)
    return metadata


def purge_old_events(
    session: Session,
    metadata: MetaData,
    sent_older_than: timedelta = timedelta(days=7),
    handled_older_than: timedelta = timedelta(days=30),
) -> dict[str, int]:
    """Keep the outbox and the ledger small. Handled ids are kept far longer than any
    redelivery could take, so a late duplicate is still recognised."""
    now = utcnow()
    outbox, handled = outbox_table(metadata), handled_table(metadata)
    sent = session.execute(delete(outbox).where(outbox.c.sent_at < now - sent_older_than)).rowcount
    old = session.execute(
        delete(handled).where(handled.c.handled_at < now - handled_older_than)
    ).rowcount
    return {"outbox_events": sent, "handled_events": old}
