"""Readiness and metrics cost what they should: /metrics is for Prometheus with its token
only, and a flood of /readyz queues at most one round of pings a second per process."""

import threading
import time

import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.conftest import METRICS_TOKEN

pytestmark = pytest.mark.integration


def test_metrics_are_served_only_with_the_metrics_token(client):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-metrics-token"})
    assert wrong.status_code == 401
    assert wrong.json["error"]["code"] == "unauthorized"
    assert "gateway_requests_total" not in wrong.text
    right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200 and "gateway_requests_total" in right.text


def test_without_a_metrics_token_metrics_are_off(stack_env):
    env = {name: value for name, value in stack_env.items() if name != "METRICS_TOKEN"}
    client = create_app(GatewaySettings.from_env(env)).test_client()
    response = client.get("/metrics", headers={"Authorization": "Bearer anything-at-all-1234"})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "metrics_disabled"


def pings_sent(app, service: str) -> float:
    """Ping tasks this app has sent to ``service``, from its own round-trip metrics."""
    registry = app.extensions["sistercities"].metrics.registry
    return sum(
        registry.get_sample_value(
            "gateway_task_roundtrip_seconds_count",
            {"task": f"{service}.ping_service", "outcome": outcome},
        )
        or 0
        for outcome in ("ok", "timeout", "unavailable", "service_unavailable")
    )


def test_a_flood_of_readyz_sends_at_most_one_round_of_pings_a_second(stack_env, stack):
    app = create_app(GatewaySettings.from_env(stack_env))
    answers: list[int] = []

    def flood() -> None:
        client = app.test_client()
        for _ in range(10):
            answers.append(client.get("/readyz").status_code)
            answers.append(client.get("/readyz/directory").status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started

    assert answers == [200] * 80  # every caller gets the answer, as before
    # One round when the flood starts, and at most one more for each second it lasted.
    allowed = 1 + int(seconds)
    assert 1 <= pings_sent(app, "blog") <= allowed
    assert 1 <= pings_sent(app, "notifier") <= allowed
    # /readyz and /readyz/directory are remembered apart: each may ping once a second.
    assert 1 <= pings_sent(app, "directory") <= 2 * allowed
