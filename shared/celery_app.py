"""The one Celery app factory every process uses: services' workers, beat, the relay, the gateway.

Defaults chosen once here: JSON only, late acknowledgement, rejection on worker loss, results
sent straight back to a waiting caller (``shared.rpc``) instead of through a result backend,
and retries with backoff only for errors worth retrying.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import kombu.exceptions
import redis
import sqlalchemy.exc
from celery import Celery, Task
from celery.app import trace
from celery.signals import before_task_publish, task_postrun, task_prerun

from shared import redis_transport
from shared.errors import ServiceError, TransientError
from shared.redis_connection import is_sentinel_url
from shared.routing import route_task
from shared.settings import CommonSettings

# Worth retrying: the peer may be back in a moment. Anything else is a bug or bad input,
# and retrying would only repeat it.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # What sending a task raises when the broker cannot be reached (kombu wraps redis-py's
    # connection errors in it).
    kombu.exceptions.OperationalError,
    ConnectionError,
    TimeoutError,
)


# Celery logs what a task returned; answers can hold signed links (a subscriber's
# preferences and unsubscribe tokens), and no secret may reach a log.
trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


class ServiceTask(Task):
    autoretry_for = RETRYABLE_ERRORS
    # Deliberate answers (not found, invalid input) are not worker errors: no traceback.
    throws = (ServiceError,)
    retry_backoff = 2
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 12
    ignore_result = True
    # Celery writes every result's repr for a log line that no longer holds it (above): a
    # search's ten cities cost a tenth of the worker's time a task. Cut it short.
    resultrepr_maxsize = 8


def broker_url(redis_url: str) -> str:
    """The kombu URL for a redis-py URL: our Redis transport (``shared.redis_transport``) for
    plain, TLS and Unix-socket Redis; kombu spells a socket ``+socket://`` where redis-py says
    ``unix://``. Sentinel URLs go unchanged (``sentinel://`` is ours too)."""
    if redis_url.startswith("unix://"):
        return f"{redis_transport.ALIAS}+socket://" + redis_url.removeprefix("unix://")
    if redis_url.startswith("redis://"):
        return f"{redis_transport.ALIAS}://" + redis_url.removeprefix("redis://")
    if redis_url.startswith("rediss://"):
        # kombu connects to a bare rediss:// without checking the server's certificate
        # (CERT_NONE, with a warning); redis-py checks it. Check it here too, unless the URL
        # says otherwise (its ssl_* options, e.g. ssl_ca_certs=, reach kombu as they are).
        url = f"{redis_transport.ALIAS}://" + redis_url.removeprefix("rediss://")
        if "ssl_cert_reqs=" not in urlsplit(url).query:
            url += ("&" if "?" in url else "?") + "ssl_cert_reqs=required"
        return url
    return redis_url


def retry_backoff_max(visibility_timeout: int) -> int:
    """The longest wait before a retry: under half the visibility timeout. A retry waits in a
    worker's hands unacknowledged; held longer than the timeout, Redis hands it to a second
    worker as well, and the task runs twice."""
    return max(1, min(ServiceTask.retry_backoff_max, visibility_timeout // 2))


def make_celery(
    name: str, settings: CommonSettings, include: Iterable[str] = (), service: str | None = None
) -> Celery:
    """Build a Celery app. ``service`` makes it a service's worker app: it then answers
    ``<service>.ping_service`` and sends replies to callers waiting through ``shared.rpc``."""
    app = Celery(name, broker=broker_url(settings.redis_url), include=list(include))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_routes=(route_task,),
        task_create_missing_queues=True,
        task_default_queue=service or "default",
        broker_transport_options={
            "visibility_timeout": settings.task_visibility_timeout,
            # A message held by a worker that died is handed out again once its visibility
            # timeout passes, checked every few seconds. kombu's defaults scan only every
            # tenth 10-second tick: up to 100 s more for every killed worker's messages.
            "unacked_restore_interval": max(1, min(10, settings.task_visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
            # A worker killed while restoring holds kombu's restore lock until it expires
            # (5 minutes by default), and nothing is restored meanwhile. Restorers running at
            # once are safe (shared.redis_transport), so the lock only saves duplicate scans.
            "unacked_mutex_expire": max(2, min(60, settings.task_visibility_timeout // 4)),
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # No remote-control mailbox: health is a ping task through the same queue as real work,
        # which also proves the worker consumes. It spares Redis a pub/sub round per worker.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    if is_sentinel_url(settings.redis_url):
        # kombu's Sentinel transport asks the sentinels for the master on every connection;
        # the consumer reconnects by itself after a failover (broker_connection_retry). A
        # socket timeout, because a master gone from the network would otherwise keep a
        # publish waiting forever. There is no result backend (shared.rpc); one would take the
        # same URL and result_backend_transport_options={"master_name": ...}.
        app.conf.broker_transport_options.update(
            master_name=settings.redis_sentinel_master,
            socket_connect_timeout=2,
            socket_timeout=10,
        )
    app.Task = type(
        "ServiceTask",
        (ServiceTask,),
        {"retry_backoff_max": retry_backoff_max(settings.task_visibility_timeout)},
    )
    if service is not None:
        _register_ping(app, service)
    return app


def _register_ping(app: Celery, service: str) -> None:
    """``<service>.ping_service`` through the interactive lane, ``<service>.ping_background``
    through the background lane (where it waits behind the lane's backlog)."""
    host = socket.gethostname()

    def ping() -> dict:
        return {"service": service, "host": host, "time": datetime.now(UTC).isoformat()}

    for name in (f"{service}.ping_service", f"{service}.ping_background"):
        app.task(name=name, shared=False)(ping)


def install_worker_hooks(redis_client: redis.Redis) -> None:
    """Bind task context into every log line, make the actor known to the service's code
    (``shared.actor``), pass both on to the tasks a task sends, and send replies to waiting
    callers."""
    import structlog

    from shared import rpc
    from shared.actor import ACTOR_HEADER, from_header, set_actor

    def before(task_id=None, task=None, **_kw):
        actor = from_header(task.request.get(ACTOR_HEADER))
        set_actor(actor)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            task_id=task_id,
            task=task.name,
            request_id=task.request.get(rpc.REQUEST_ID_HEADER),
            actor=actor["id"] if actor else None,
        )

    def after(task=None, retval=None, state=None, **_kw):
        rpc.send_reply(redis_client, task, retval, state)
        structlog.contextvars.clear_contextvars()
        set_actor(None)

    task_prerun.connect(before, weak=False)
    task_postrun.connect(after, weak=False)
    before_task_publish.connect(pass_context_on, weak=False)


def pass_context_on(headers=None, **_kw) -> None:
    """A task sent while another runs (a staff action's follow-up work) carries the same
    actor and request id, so what it records is on record under the same person."""
    import structlog

    from shared import rpc
    from shared.actor import ACTOR_HEADER, current_actor

    if headers is None:
        return
    actor = current_actor()
    if actor is not None:
        headers.setdefault(ACTOR_HEADER, actor)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id is not None:
        headers.setdefault(rpc.REQUEST_ID_HEADER, request_id)
