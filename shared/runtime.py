"""What a service's worker process holds: its settings, its database, its Celery app.

Every service builds one ``ServiceRuntime`` in its ``worker.py``. The runtime registers the
tasks every service has in the same form: ``<service>.ping_service`` (health),
``<service>.handle_events`` (batches of events from the routing table, each handled once),
``<service>.purge_events`` (keeps the outbox and the ledger small) and, for a service with an
audit log, ``<service>.list_audit_entries`` (its part of the merged history, ``shared.audit``).

A worker process consumes one lane of its service (``shared.routing``): its interactive queue
or its background queue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property

import redis
import sqlalchemy.exc
from celery import Celery
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import Session, sessionmaker

from shared import audit
from shared.celery_app import install_worker_hooks, make_celery
from shared.db import make_engine, make_session_factory, read_only, session_scope
from shared.events import Envelope, Handler, handle_events_once, on_outbox_commit
from shared.redis_connection import connect
from shared.relay import purge_old_events, wake_relay
from shared.routing import BACKGROUND, INTERACTIVE, lane_queues
from shared.settings import ServiceSettings

# A background worker beside interactive ones on the same machine (`sistercities run`, a
# shared node) yields the processor to them when both want it; alone it runs at full speed.
BACKGROUND_NICENESS = 10


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        metadata: MetaData,
        include: Iterable[str],
        event_handlers: Mapping[str, Handler] | None = None,
    ):
        self.settings = settings
        self.service = settings.service
        self.metadata = metadata
        self.event_handlers = dict(event_handlers or {})
        self.celery: Celery = make_celery(
            self.service, settings, include=include, service=self.service
        )
        self._register_common_tasks()
        self._before_start: list[Callable[[], object]] = []
        # The lane this process's worker consumes; None outside a worker (the CLI, a test).
        self.lane: str | None = None
        on_outbox_commit(lambda: wake_relay(self.redis))

    def before_start(self, step: Callable[[], object]) -> None:
        """Run ``step`` in an interactive worker before it consumes (warming caches, so no
        visitor waits for them); a background worker warms what it needs on first use."""
        self._before_start.append(step)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for work that only reads (never waits for a writer on SQLite)."""
        return make_session_factory(read_only(self.engine))

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(
            self.settings.redis_url,
            self.settings.redis_sentinel_master,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )

    def start_worker(self, lane: str, extra_args: Iterable[str] = ()) -> None:
        """Run a worker of one of this service's lanes in the current process until it is
        told to stop."""
        self.lane = lane
        queues = ",".join(lane_queues(self.service, lane))
        if lane == BACKGROUND:
            os.nice(BACKGROUND_NICENESS)
            # Background tasks are long: a message waits in the queue for whichever worker
            # frees a thread first, not behind another's running tasks.
            self.celery.conf.worker_prefetch_multiplier = 1
        install_worker_hooks(self.redis)
        for step in self._before_start if lane == INTERACTIVE else ():
            try:
                step()
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as error:
                raise SystemExit(
                    f"{self.service}: the database is not ready ({error.orig}); "
                    "is it migrated? run `sistercities migrate`"
                ) from error
        self.celery.worker_main(
            [
                "worker",
                f"--queues={queues}",
                f"--hostname={self.service}-{lane}@%h",
                f"--pool={self.settings.worker_pool}",
                f"--concurrency={self.settings.worker_concurrency}",
                f"--loglevel={self.settings.log_level.upper()}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *extra_args,
            ]
        )

    def _register_common_tasks(self) -> None:
        runtime = self

        @self.celery.task(name=f"{self.service}.handle_events", shared=False)
        def handle_events(envelopes: list[Envelope]) -> dict[str, int]:
            return handle_events_once(
                runtime.sessions, runtime.metadata, envelopes, runtime.event_handlers
            )

        # One event a message, as relays sent them before batches: still queued at an upgrade.
        @self.celery.task(name=f"{self.service}.handle_event", shared=False)
        def handle_event(envelope: Envelope) -> dict[str, int]:
            return handle_events_once(
                runtime.sessions, runtime.metadata, [envelope], runtime.event_handlers
            )

        @self.celery.task(name=f"{self.service}.purge_events", shared=False)
        def purge_events() -> dict[str, int]:
            with session_scope(runtime.sessions) as session:
                return purge_old_events(session, runtime.metadata)

        if audit.TABLE not in self.metadata.tables:
            return

        @self.celery.task(name=f"{self.service}.list_audit_entries", shared=False)
        def list_audit_entries(
            kind: str | None = None,
            object_id: str | None = None,
            cursor: str | None = None,
            limit: int = 50,
        ) -> dict:
            with runtime.read_sessions() as session:
                return audit.list_entries(
                    session, runtime.metadata, runtime.service, kind, object_id, cursor, limit
                )
