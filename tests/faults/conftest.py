"""The fault suite's world: a Redis and a PostgreSQL of its own (``tests/faults/servers.py``),
an SMTP sink, and the whole stack — gateway (gunicorn), the four workers, beat and the relay —
as subprocesses against them, started once for the folder. Each test gets the stack running
and answering, and leaves every database empty behind it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
import requests
from sqlalchemy import Engine, text

from shared.db import make_engine
from shared.errors import ServiceError
from shared.queues import QUEUES
from shared.routing import SERVICES
from shared.rpc import ServiceClient
from shared.task_messages import task_message
from tests.conftest import ADMIN_TOKEN, empty_tables, stack_environment
from tests.faults.servers import PrivatePostgres, PrivateRedis, why_no_servers
from tests.mail_sink import MailSink
from tests.stack import Stack, free_port, wait_for

# Seconds before a message held by a killed worker is handed out again: the tests wait for it.
VISIBILITY_TIMEOUT = 20
PROCESSES = ("gateway", *SERVICES, "relay", "beat")
# How long a periodic task pushed by a test may wait in its queue.
PERIODIC_EXPIRES = 600.0


@dataclass
class FaultStack:
    """The running system and the handles a fault test needs to hurt it and to count."""

    env: dict[str, str]
    processes: Stack
    redis_server: PrivateRedis
    postgres: PrivatePostgres
    mail: MailSink
    engines: dict[str, Engine]
    gateway_url: str
    redis: redis.Redis = field(init=False)
    services: ServiceClient = field(init=False)
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.redis = self.redis_server.client(socket_timeout=10)
        self.services = ServiceClient(self.redis, timeout=2.0)

    # --- the processes ---------------------------------------------------------------------

    def start(self, name: str) -> None:
        if name == "gateway":
            self.processes.start("gateway", "gateway")
        elif name in SERVICES:
            self.processes.start_worker(name)
        else:
            self.processes.start(name, name)

    def ensure_running(self) -> None:
        """Whatever a test killed or stopped is started again, and answers."""
        if not self.redis_server.running():
            self.redis_server.start()
        if not self.postgres.running():
            self.postgres.start()
        for name in PROCESSES:
            process = self.processes.processes.get(name)
            if process is None or process.poll() is not None:
                self.start(name)
        for service in SERVICES:
            self.wait_until_answers(service)
        wait_for(self.gateway_up, timeout=60, interval=0.1, what="the gateway to answer")

    def wait_until_answers(self, service: str, timeout: float = 90.0) -> None:
        def answers() -> bool:
            try:
                self.services.call(f"{service}.ping_service", timeout=1.0)
                return True
            except ServiceError:
                return False

        wait_for(answers, timeout=timeout, interval=0.2, what=f"the {service} worker to answer")

    def gateway_up(self) -> bool:
        try:
            return self.http.get(self.gateway_url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # --- talking to it ----------------------------------------------------------------------

    def get(self, path: str, **options) -> requests.Response:
        return self.http.get(self.gateway_url + path, timeout=options.pop("timeout", 30), **options)

    def post(self, path: str, **options) -> requests.Response:
        options.setdefault("headers", {}).setdefault("Authorization", f"Bearer {ADMIN_TOKEN}")
        return self.http.post(
            self.gateway_url + path, timeout=options.pop("timeout", 60), **options
        )

    def run_periodic(self, task_name: str, *args, **kwargs) -> None:
        """Send a periodic task now, the message beat sends when it is due (beat's own
        intervals, 1 to 5 minutes, are longer than a test should wait)."""
        queue, message = task_message(task_name, args, kwargs, {}, expires_in=PERIODIC_EXPIRES)
        self.redis.lpush(queue, message)

    def count(self, service: str, sql: str, **params) -> int:
        with self.engines[service].connect() as conn:
            return conn.execute(text(sql), params).scalar_one()

    def clear_queues(self) -> None:
        """Drop what a test left in the queues (late retries, expired calls): the next test
        counts only its own work."""
        self.redis.delete(*QUEUES, "unacked", "unacked_index")

    def say(self, line: str) -> None:
        """A measurement, printed with a prefix that stands out in pytest -s and the logs."""
        print(f"FAULTS {line}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory) -> Iterator[FaultStack]:
    missing = why_no_servers()
    if missing is not None:
        pytest.skip(f"the fault tests start servers of their own: {missing}")
    started = time.monotonic()
    redis_server = PrivateRedis(appendonly=True).start()
    postgres = PrivatePostgres().start()
    mail = MailSink().start()
    processes = None
    engines: dict[str, Engine] = {}
    try:
        urls = postgres.create_databases([f"sc_{service}" for service in SERVICES])
        database_urls = {service: urls[f"sc_{service}"] for service in SERVICES}
        env = stack_environment(redis_server.url, database_urls, mail.url,
                                tmp_path_factory.mktemp("fault-data"))  # fmt: skip
        env.update(
            TASK_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
            HOST="127.0.0.1",
            PORT=str(free_port()),
            # One gunicorn process is plenty here, and leaves the cores to the rest.
            GATEWAY_PROCESSES="1",
            # Every request reaches a service: a cached answer would hide the fault under test.
            CACHE_SECONDS="0",
        )
        subprocess.run([sys.executable, "-m", "sistercities", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        engines = {service: make_engine(url) for service, url in database_urls.items()}
        processes = Stack(env, tmp_path_factory.mktemp("fault-logs"))
        faults = FaultStack(env, processes, redis_server, postgres, mail, engines,
                            f"http://127.0.0.1:{env['PORT']}")  # fmt: skip
        faults.ensure_running()
        faults.say(f"stack up in {time.monotonic() - started:.1f} s (logs: {processes.log_dir})")
        yield faults
    finally:
        if processes is not None:
            processes.stop_all()
        for engine in engines.values():
            engine.dispose()
        mail.stop()
        postgres.close()
        redis_server.close()


@pytest.fixture
def faults(fault_stack: FaultStack) -> Iterator[FaultStack]:
    """The stack running and answering; afterwards, empty databases and queues."""
    fault_stack.ensure_running()
    fault_stack.mail.clear()
    yield fault_stack
    fault_stack.ensure_running()
    fault_stack.clear_queues()
    for engine in fault_stack.engines.values():
        empty_tables(engine)
    fault_stack.mail.clear()
