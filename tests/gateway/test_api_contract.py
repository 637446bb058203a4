"""The gateway's API contract: one error shape with the right status everywhere, the OpenAPI
document, request ids and metrics. None of these need a worker."""

import inspect
import re

import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.conftest import METRICS_TOKEN

ERROR_KEYS = {"code", "message"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert set(response.json) == {"error"}
    assert set(response.json["error"]) == ERROR_KEYS
    assert response.json["error"]["code"] == code
    return response.json["error"]


def test_unknown_route_is_a_json_404(client):
    assert_error(client.get("/no/such/page"), 404, "not_found")


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.put("/healthz")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong", "other-scheme"],
)
def test_admin_routes_need_the_admin_token(client, headers):
    response = client.post(
        "/api/v1/admin/partnerships", json={"city_id": 1, "sister_city_id": 2}, headers=headers
    )
    error = assert_error(response, 401, "unauthorized")
    assert "admin token" in error["message"]


def test_without_a_configured_token_the_admin_api_is_off(stack_env):
    env = {k: v for k, v in stack_env.items() if k != "ADMIN_TOKEN"}
    app = create_app(GatewaySettings.from_env(env))
    response = app.test_client().delete(
        "/api/v1/admin/partnerships/1", headers={"Authorization": "Bearer anything-at-all-here"}
    )
    assert_error(response, 403, "admin_disabled")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"city_id": "one", "sister_city_id": 2}, "city_id"),
        ({"city_id": 1}, "sister_city_id"),
        ({"city_id": 1, "sister_city_id": 2, "status": "<script>alert(1)</script>"}, "status"),
        ({"city_id": 1, "sister_city_id": 2, "since": 99999}, "since"),
        ({"city_id": -5, "sister_city_id": 2}, "city_id"),
        ({"city_id": 1.5, "sister_city_id": 2}, "city_id"),
    ],
)
def test_invalid_bodies_are_400s_that_name_the_field(client, admin_headers, body, field):
    response = client.post("/api/v1/admin/partnerships", json=body, headers=admin_headers)
    error = assert_error(response, 400, "invalid_request")
    assert field in error["message"]
    assert "<script>" not in response.get_data(as_text=True)


def test_a_body_that_is_not_json_is_a_400(client, admin_headers):
    response = client.post(
        "/api/v1/admin/partnerships",
        data="city_id=1",
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_request")


def test_a_huge_body_is_a_413(client, admin_headers, gateway_app):
    limit = gateway_app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/api/v1/admin/partnerships",
        data=b"{" + b" " * (limit + 10) + b"}",
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


def test_the_openapi_document_describes_every_route_and_the_error_shape(client, gateway_app):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    # The site's own pages, feeds and files are not API (nor are the staff dashboard and its
    # sign-in pages, nor the
    # WebSub callbacks hubs call); the pages mail links lead to are.
    site = (
        "openapi.",
        "public.",
        "assets.",
        "admin_dashboard.",
        "staff_pages.",
        "workspace.",
        "campaign_pages.",
        "take_action.",
        "websub.",
    )
    for rule in gateway_app.url_map.iter_rules():
        if rule.endpoint.startswith(site):
            continue
        path = re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"
    error_schema = spec["components"]["schemas"]["Error"]
    assert "error" in error_schema["properties"]
    assert "bearerAuth" in str(spec["components"].get("securitySchemes")) or spec["components"].get(
        "securitySchemes"
    )


def test_request_ids_are_echoed_and_unsafe_ones_replaced(client):
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"})
    assert replaced.headers["X-Request-ID"] != "bad id; <script>"
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_metrics_count_requests_per_route(client):
    client.get("/healthz")
    client.get("/healthz")
    prometheus = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = client.get("/metrics", headers=prometheus).get_data(as_text=True)
    assert 'gateway_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "gateway_request_duration_seconds_bucket" in text


def test_no_view_or_hook_is_a_coroutine(gateway_app):
    # The app skips Flask's per-hook coroutine check (app.ensure_sync): an async view would
    # then be called without being awaited.
    functions = list(gateway_app.view_functions.values())
    for hooks in (gateway_app.before_request_funcs, gateway_app.after_request_funcs):
        functions += [hook for each in hooks.values() for hook in each]
    assert functions
    assert not [f for f in functions if inspect.iscoroutinefunction(inspect.unwrap(f))]
