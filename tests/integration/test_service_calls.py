"""The gateway calls services by task name and never hangs: a missing worker is a clear 503
within the timeout, and the gateway recovers when the worker is back."""

import json
import time

import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.conftest import count_rows, wait_until_answers

pytestmark = pytest.mark.integration

TIMEOUT = 2.0


@pytest.fixture
def fresh_client(stack_env):
    """A gateway of its own: each process reuses a readiness answer for a second, and these
    tests need the first /readyz they send to ask the workers."""
    return create_app(GatewaySettings.from_env(stack_env)).test_client()


def test_readyz_reports_redis_and_every_service(client, stack):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ready"
    assert body["redis"]["status"] == "ok"
    assert set(body["services"]) == {"directory", "blog", "notifier", "staff"}
    for entry in body["services"].values():
        assert entry["status"] == "ok"
        assert 0 < entry["ms"] < TIMEOUT * 1000


def test_a_stopped_worker_is_a_503_within_the_timeout_and_the_gateway_recovers(
    fresh_client, stack, services, admin_headers, clean_databases
):
    client = fresh_client
    stack.stop("directory")
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json["status"] == "unavailable"
        directory = response.json["services"]["directory"]
        assert directory["status"] == "unavailable"
        assert "did not answer within 2 s" in directory["message"]
        assert response.json["services"]["blog"]["status"] == "ok"
        assert elapsed < TIMEOUT + 1.0

        one = client.get("/readyz/directory")
        assert one.status_code == 503
        assert one.json["status"] == "unavailable"
        assert client.get("/readyz/blog").status_code == 200

        started = time.monotonic()
        response = client.post(
            "/api/v1/admin/partnerships",
            json={"city_id": 1, "sister_city_id": 2},
            headers=admin_headers,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json == {
            "error": {
                "code": "service_unavailable",
                "message": "the directory service did not answer within 2 s",
            }
        }
        assert elapsed < TIMEOUT + 1.0
    finally:
        stack.start_worker("directory")
    wait_until_answers(services, "directory")
    assert client.get("/readyz").status_code == 200
    # The request the user was told failed must not happen later behind their back: the
    # message expired with the caller's timeout and the returning worker discarded it.
    time.sleep(0.5)
    assert count_rows(clean_databases["directory"], "SELECT count(*) FROM partnerships") == 0
    assert (
        "revoked" in stack.log("directory").lower() or "expired" in stack.log("directory").lower()
    )


def test_one_service_readiness_and_an_unknown_service(client, stack):
    body = client.get("/readyz/notifier").json
    assert body["status"] == "ok" and body["ms"] > 0
    assert client.get("/readyz/payments").status_code == 404


def test_the_request_id_travels_into_the_worker_log_lines(fresh_client, stack):
    client = fresh_client
    request_id = f"trace-{time.time_ns()}"
    response = client.get("/readyz", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id

    def logged() -> list[dict]:
        lines = []
        for line in stack.log("notifier").splitlines():
            if request_id in line:
                lines.append(json.loads(line))
        return lines

    deadline = time.monotonic() + 5
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.05)
    entries = logged()
    assert entries, "the notifier worker logged nothing with the gateway's request id"
    assert all(entry["request_id"] == request_id for entry in entries)
    assert any(entry.get("task") == "notifier.ping_service" for entry in entries)
