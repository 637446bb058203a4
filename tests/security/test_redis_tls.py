"""Redis over TLS (a rediss:// REDIS_URL) checks the server's certificate on every client: the
Celery broker as well as redis-py. kombu alone would connect to any server over rediss://
without checking (CERT_NONE), so a machine in the middle could read and send tasks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu.exceptions import OperationalError

from shared.celery_app import make_celery
from shared.redis_connection import connect
from shared.settings import CommonSettings, EnvReader
from tests.faults.servers import redis_server
from tests.stack import free_port, wait_for

PASSWORD = "tls0password"


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own, and a certificate it signed for localhost."""
    ca_key, ca, key, request, cert = (
        folder / name for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    quiet = {"check": True, "capture_output": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=test CA", "-keyout", ca_key, "-out", ca], **quiet)  # fmt: skip
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", key, "-out", request], **quiet)  # fmt: skip
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "1", "-extfile", extensions,
                    "-out", cert], **quiet)  # fmt: skip
    return ca, cert, key


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A redis-server that speaks only TLS and asks for a password: (its rediss:// URL, CA)."""
    folder = tmp_path_factory.mktemp("tls-redis")
    ca, cert, key = make_certificates(folder)
    port = free_port()
    process = subprocess.Popen(
        [redis_server() or "redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
         "--requirepass", PASSWORD, "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"rediss://:{PASSWORD}@localhost:{port}/0"
    trusting = redis.Redis.from_url(url, ssl_ca_certs=str(ca), socket_connect_timeout=1)

    def answers() -> bool:
        try:
            return bool(trusting.ping())
        except redis.exceptions.ConnectionError:
            return False

    try:
        wait_for(answers, what="the TLS Redis")
        trusting.close()
        yield url, ca
    finally:
        process.terminate()
        process.wait(timeout=10)


def broker(url: str):
    env = EnvReader({"REDIS_URL": url, "DATA_DIR": "/nonexistent"})
    app = make_celery("tls-test", CommonSettings(**CommonSettings.read(env)))
    env.done()
    return app.connection_for_write()


def test_a_broker_over_rediss_refuses_a_server_whose_certificate_it_cannot_check(tls_redis):
    url, _ = tls_redis
    connection = broker(url)
    try:
        with pytest.raises(OperationalError, match="certificate verify failed"):
            connection.ensure_connection(max_retries=1)
    finally:
        connection.release()


def test_a_broker_and_a_client_over_rediss_work_with_the_servers_ca(tls_redis):
    url, ca = tls_redis
    trusted = f"{url}?ssl_ca_certs={ca}"
    connection = broker(trusted)
    try:
        queue = connection.SimpleQueue("tls-test")
        queue.put({"over": "tls"})
        message = queue.get(timeout=5)
        assert message.payload == {"over": "tls"}
        message.ack()
        queue.close()
    finally:
        connection.release()
    client = connect(trusted)
    assert client.ping()
    client.close()
