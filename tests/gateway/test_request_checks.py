"""What the gateway refuses before any service sees it: here, JSON bodies nested so deeply that
parsing or walking them would fail."""

import pytest

MAX_JSON_DEPTH = 32  # the documented limit (request_checks.MAX_JSON_DEPTH)

pytestmark = pytest.mark.integration

JSON_ROUTES = [
    ("POST", "/api/v1/subscriptions"),
    ("POST", "/api/v1/admin/feeds"),
    ("POST", "/api/v1/admin/partnerships"),
    ("PATCH", "/api/v1/admin/partnerships/1"),
    ("POST", "/api/v1/admin/digests/send"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_a_body_of_a_hundred_thousand_brackets_is_a_400_with_the_error_body(
    client, admin_headers, method, path
):
    response = client.open(
        path,
        method=method,
        data="[" * 100_000,
        content_type="application/json",
        headers=admin_headers,
    )
    assert response.status_code == 400
    assert response.json == {
        "error": {
            "code": "invalid_request",
            "message": f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep",
        }
    }


def test_a_well_formed_body_nested_past_the_limit_is_refused_and_one_within_it_is_not(
    client, stack
):
    def send(depth: int):
        body = "[" * (depth - 1) + '{"email": "x"}' + "]" * (depth - 1)
        return client.post("/api/v1/subscriptions", data=body, content_type="application/json")

    too_deep = send(MAX_JSON_DEPTH + 1)
    assert too_deep.status_code == 400 and "nested" in too_deep.json["error"]["message"]
    within = send(MAX_JSON_DEPTH)
    assert within.status_code == 400 and "nested" not in within.json["error"]["message"]
