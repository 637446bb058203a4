"""Subscribers through the admin API with the real workers and mail server: found by address,
seen, sent their confirmation again (the mail arrives), unsubscribed and erased on record
under the admin's name, exported as formula-safe CSV; for admins only (401 without a
credential, 403 for an editor), 404 for an unknown id, 400 for bad input."""

import csv
import io

import pytest
from sqlalchemy import insert

from services.notifier.models import Subscriber
from services.notifier.subscriber_admin import EXPORT_PAGE
from shared.events import utcnow
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    api_csrf,
    sign_in_with_password,
)
from tests.notifier.test_subscriber_admin import add, texts_holding
from tests.stack import wait_for

pytestmark = pytest.mark.integration

BASE = "/api/v1/admin/subscribers"


def routes(subscriber_id: int) -> list[tuple[str, str]]:
    return [
        ("GET", BASE),
        ("GET", f"{BASE}.csv"),
        ("GET", f"{BASE}/{subscriber_id}"),
        ("POST", f"{BASE}/{subscriber_id}/resend-confirmation"),
        ("POST", f"{BASE}/{subscriber_id}/unsubscribe"),
        ("DELETE", f"{BASE}/{subscriber_id}"),
    ]


def test_subscribers_are_for_admins_only(gateway_app, client, stack, clean_databases):
    subscriber_id = add(clean_databases["notifier"], "ada@example.org")
    add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    editor = sign_in_with_password(gateway_app, "eve@example.org")
    csrf = {"X-CSRF-Token": api_csrf(editor)}
    for method, path in routes(subscriber_id):
        anonymous = client.open(path, method=method)
        assert anonymous.status_code == 401, (method, path)
        refused = editor.open(path, method=method, headers=csrf)
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json["error"]["code"] == "forbidden"


def test_unknown_ids_are_404s_and_bad_input_400s(client, stack, clean_databases, admin_headers):
    for method, path in routes(999_999)[2:]:
        assert client.open(path, method=method, headers=admin_headers).status_code == 404, path
    huge = client.get(f"{BASE}/{2**40}", headers=admin_headers)
    assert huge.status_code == 404
    for query in ("?limit=0", "?limit=101", "?before=abc", "?before=0", "?q=" + "x" * 255):
        answer = client.get(BASE + query, headers=admin_headers)
        assert answer.status_code == 400, (query, answer.json)
    control = client.get(BASE + "?q=ada%00", headers=admin_headers)
    assert control.status_code == 400 and "printable" in control.json["error"]["message"]


def test_an_admin_finds_resends_unsubscribes_and_erases_a_subscriber(
    client, stack, clean_databases, admin_headers, mail_sink
):
    address = "Pending.Person@example.org"
    subscribed = client.post("/api/v1/subscriptions", json={"email": address})
    assert subscribed.status_code == 202, subscribed.json
    wait_for(lambda: len(mail_sink.to(address)) == 1, what="the first confirmation")
    add(clean_databases["notifier"], "other@example.org")

    found = client.get(f"{BASE}?q=pending.p", headers=admin_headers)
    assert found.status_code == 200, found.json
    assert [row["email"] for row in found.json["results"]] == [address]
    subscriber_id = found.json["results"][0]["id"]
    assert found.json["next_before_id"] is None
    paged = client.get(f"{BASE}?limit=1", headers=admin_headers).json
    assert paged["next_before_id"] is not None and len(paged["results"]) == 1

    resent = client.post(f"{BASE}/{subscriber_id}/resend-confirmation", headers=admin_headers)
    assert resent.status_code == 200, resent.json
    assert resent.json["confirmations"] == 2
    wait_for(lambda: len(mail_sink.to(address)) == 2, what="the confirmation sent again")

    unsubscribed = client.post(f"{BASE}/{subscriber_id}/unsubscribe", headers=admin_headers)
    assert unsubscribed.status_code == 200 and unsubscribed.json["status"] == "unsubscribed"
    again = client.post(f"{BASE}/{subscriber_id}/resend-confirmation", headers=admin_headers)
    assert again.status_code == 409 and "pending" in again.json["error"]["message"]

    erased = client.delete(f"{BASE}/{subscriber_id}", headers=admin_headers)
    assert erased.status_code == 200 and erased.json == {"id": subscriber_id, "erased": True}
    seen = client.get(f"{BASE}/{subscriber_id}", headers=admin_headers).json
    assert (seen["email"], seen["status"], seen["confirmations"]) == (None, "erased", 2)
    assert texts_holding(clean_databases["notifier"], address) == []

    history = client.get(
        f"/api/v1/admin/audit?kind=subscriber&id={subscriber_id}", headers=admin_headers
    ).json["results"]
    assert [(entry["action"], entry["actor"]["id"]) for entry in history] == [
        ("subscriber.erased", "token:admin"),
        ("subscriber.unsubscribed", "token:admin"),
        ("subscriber.confirmation_resent", "token:admin"),
    ]


def test_the_csv_export_is_streamed_and_formula_safe(client, stack, clean_databases, admin_headers):
    engine = clean_databases["notifier"]
    hostile = ["=2+5@example.org", "+cmd@example.org", "-1@example.org"]
    for email in hostile:
        add(engine, email)
    answer = client.get(f"{BASE}.csv", headers=admin_headers)
    assert answer.status_code == 200
    assert answer.is_streamed
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:2] == ["id", "email"]
    assert [row[1] for row in rows[1:]] == ["'" + email for email in hostile]


def test_the_csv_export_goes_on_past_the_first_page(client, stack, clean_databases, admin_headers):
    now = utcnow()
    with clean_databases["notifier"].begin() as conn:
        conn.execute(
            insert(Subscriber),
            [
                dict(email=f"reader{n}@example.org", frequency="daily", weekday=0, city_ids=[],
                     status="confirmed", created_at=now, soft_failures=0)
                for n in range(EXPORT_PAGE + 1)
            ],
        )  # fmt: skip
    answer = client.get(f"{BASE}.csv", headers=admin_headers)
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert len(rows) == 1 + EXPORT_PAGE + 1
    assert len({row[1] for row in rows[1:]}) == EXPORT_PAGE + 1
