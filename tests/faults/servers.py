"""A Redis and a PostgreSQL of the fault tests' own, on free local ports in temporary folders,
so that the tests can kill them and start them again without touching the machine's servers.

PostgreSQL refuses to run as root (``initdb`` and ``postgres`` both stop with "cannot be run
as root"): as root, every PostgreSQL command runs as the ``postgres`` user through ``runuser``,
in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from tests.stack import free_port, wait_for

POSTGRES_USER = "postgres"


def redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def postgres_bin() -> Path | None:
    """The newest PostgreSQL's bin folder (Debian keeps them under /usr/lib/postgresql/N/)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_no_servers() -> str | None:
    """Why the fault tests cannot run here, or None when they can."""
    if redis_server() is None:
        return "no redis-server on this machine"
    if postgres_bin() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL cannot run as root"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return "running as root with no postgres user: PostgreSQL cannot run as root"
    return None


def _scratch_folder(prefix: str) -> Path:
    # Straight under /tmp: pytest's own folders are private to root, and a Unix socket's path
    # must stay under ~100 characters.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class PrivateRedis:
    """redis-server on a free port. ``kill`` is SIGKILL; ``start`` again reads the same folder,
    so with the append-only file on, everything acknowledged before the kill is back."""

    def __init__(self, appendonly: bool = True):
        self.folder = _scratch_folder("scf-redis-")
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, appendonly: bool | None = None) -> PrivateRedis:
        if appendonly is not None:
            self.appendonly = appendonly
        assert self.process is None or self.process.poll() is not None
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                redis_server() or "redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.folder),
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec",
                "--save", "",
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        client = self.client(socket_timeout=1)
        wait_for(lambda: _pings(client), timeout=20, interval=0.05, what="the private Redis")
        client.close()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, **options) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, **options)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        # A Redis still loading its append-only file answers LOADING: not ready yet.
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False


class PrivatePostgres:
    """A PostgreSQL cluster made by initdb in a temporary folder, on a free port, with fsync
    off (a test's data need not survive the machine). ``stop("immediate")`` is a crash: the
    server drops every connection at once and recovers from its WAL at the next start."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.folder = _scratch_folder("scf-pg-")
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, POSTGRES_USER, POSTGRES_USER)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N",
                  "--encoding=UTF8", "--locale=C")  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_root:
            command = ["runuser", "-u", POSTGRES_USER, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PrivatePostgres:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.folder / "postgres.log"), "-w", "-t", "60", "start")  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """``immediate``: a crash, as far as clients and the server's data can tell."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_databases(self, names: list[str]) -> dict[str, str]:
        engine = create_engine(
            self.url().replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with engine.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return {name: self.url(name) for name in names}

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
