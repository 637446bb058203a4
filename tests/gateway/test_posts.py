"""The stories API and pages with a cursor someone tampered with: a 400 that says so, from
the blog service's own check, on SQLite and PostgreSQL alike."""

import base64

import pytest

pytestmark = pytest.mark.integration

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
# A cursor as the API gives them out, its id swapped for 40 digits.
FORTY_DIGITS = (
    base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|" + b"9" * 40).decode().rstrip("=")
)


def test_a_cursor_with_a_forty_digit_id_is_a_400_in_the_api(client, stack):
    response = client.get("/api/v1/posts", query_string={"cursor": FORTY_DIGITS})
    assert response.status_code == 400
    assert response.json == {
        "error": {
            "code": "invalid_request",
            "message": "the cursor is not one this API gave out",
        }
    }


def test_a_cursor_with_a_forty_digit_id_is_a_400_on_the_blog_page(client, stack):
    page = client.get("/blog", query_string={"cursor": FORTY_DIGITS}, headers=BROWSER)
    assert page.status_code == 400
    assert "the cursor is not one this API gave out" in page.text
