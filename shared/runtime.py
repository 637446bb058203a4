"""What a service's worker process holds: its settings, its database, its Celery app.

Every service builds one ``ServiceRuntime`` in its ``worker.py``. The runtime registers the
tasks every service has in the same form: ``<service>.ping_service`` (health),
``<service>.handle_event`` (events from the routing table, handled once) and
``<service>.purge_events`` (keeps the outbox and the ledger small).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cached_property

import redis
import sqlalchemy.exc
from celery import Celery
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import Session, sessionmaker

from shared.celery_app import install_worker_hooks, make_celery
from shared.db import make_engine, make_session_factory, read_only, session_scope
from shared.events import Envelope, Handler, handle_event_once, on_outbox_commit
from shared.redis_connection import connect
from shared.relay import purge_old_events, wake_relay
from shared.settings import ServiceSettings


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
        on_outbox_commit(lambda: wake_relay(self.redis))

    def before_start(self, step: Callable[[], object]) -> None:
        """Run ``step`` in the worker process before it consumes (warming caches)."""
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

    def start_worker(self, extra_args: Iterable[str] = ()) -> None:
        """Run this service's worker in the current process until it is told to stop."""
        install_worker_hooks(self.redis)
        for step in self._before_start:
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
                f"--queues={self.service}",
                f"--hostname={self.service}@%h",
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

        @self.celery.task(name=f"{self.service}.handle_event", shared=False)
        def handle_event(envelope: Envelope) -> str:
            return handle_event_once(
                runtime.sessions, runtime.metadata, envelope, runtime.event_handlers
            )

        @self.celery.task(name=f"{self.service}.purge_events", shared=False)
        def purge_events() -> dict[str, int]:
            with session_scope(runtime.sessions) as session:
                return purge_old_events(session, runtime.metadata)
