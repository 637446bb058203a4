"""Campaigns through the real gateway, workers, relay and SMTP server: a campaign to the
followers of one city reaches exactly them, once each, with a working one-click unsubscribe;
its Markdown's hostile HTML reaches neither the mail nor the page; once sent it shows on the
cached Take Action pages and the home page at once (its event moves their generation); an
editor writes and tries one but cannot send it; the workspace pages do the same by form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert

from services.notifier.models import Subscriber
from shared.events import utcnow
from tests.conftest import count_rows
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    api_csrf,
    csrf_of,
    sign_in_with_password,
)
from tests.stack import wait_for

pytestmark = pytest.mark.integration

BASE = "http://sistercities.test"
HOSTILE = (
    "Write to the **mayor** of Lyon.\n\n<script>alert('x')</script>"
    ' <img src="https://tracker.example/p.gif" onerror="alert(1)">\n\n'
    "[Sign the letter](https://letters.example/sign) · [no](javascript:alert(1))"
)
FOLLOWERS = [f"lyon{n}@example.org" for n in range(4)]


def add_subscribers(engine, rows: list[tuple[str, list[int], str]]) -> None:
    confirmed = utcnow() - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), [
            {"email": email, "frequency": "weekly", "weekday": 0, "city_ids": cities,
             "status": status, "created_at": confirmed, "confirmed_at": confirmed,
             "soft_failures": 0}
            for email, cities, status in rows
        ])  # fmt: skip


def campaign_status(client, admin_headers, campaign_id: int) -> str:
    return client.get(f"/api/v1/admin/campaigns/{campaign_id}", headers=admin_headers).json[
        "status"
    ]


def test_a_campaign_to_one_citys_followers_reaches_them_once_and_shows_on_the_site(
    client, stack, admin_headers, clean_databases, mail_sink
):
    notifier = clean_databases["notifier"]
    add_subscribers(notifier, [(email, [10], "confirmed") for email in FOLLOWERS[:3]]
                    + [(FOLLOWERS[3], [20, 10], "confirmed"),
                       ("kyoto@example.org", [20], "confirmed"),
                       ("everything@example.org", [], "confirmed"),
                       ("pending@example.org", [10], "pending")])  # fmt: skip
    # The public pages, cached before the campaign exists.
    assert "No announcements yet" in client.get("/take-action").text
    assert "Write to the mayor" not in client.get("/").text

    created = client.post("/api/v1/admin/campaigns", headers=admin_headers, json={
        "subject": "Lyon needs you", "body": HOSTILE, "audience": {"city_ids": [10]}})  # fmt: skip
    assert created.status_code == 201, created.text
    campaign_id = created.json["id"]
    assert created.json["status"] == "draft" and "<script" not in created.json["body_html"]
    shown = client.get(f"/api/v1/admin/campaigns/{campaign_id}", headers=admin_headers).json
    assert shown["audience_size"] == 4
    preview = client.get(f"/api/v1/admin/campaigns/{campaign_id}/preview?email=kyoto@example.org",
                         headers=admin_headers)  # fmt: skip
    assert preview.status_code == 200 and preview.json["in_audience"] is False

    sent = client.post(f"/api/v1/admin/campaigns/{campaign_id}/send", headers=admin_headers,
                       json={})  # fmt: skip
    assert sent.status_code == 202, sent.text
    wait_for(lambda: campaign_status(client, admin_headers, campaign_id) == "sent",
             timeout=60, what="the campaign to be sent")  # fmt: skip

    assert sorted(r.recipients[0] for r in mail_sink.received) == sorted(FOLLOWERS)
    assert count_rows(notifier, "SELECT count(*) FROM deliveries WHERE status = 'sent'") == 4
    again = client.post(f"/api/v1/admin/campaigns/{campaign_id}/send", headers=admin_headers,
                        json={})  # fmt: skip
    assert again.status_code == 409
    assert len(mail_sink.received) == 4

    message = mail_sink.to(FOLLOWERS[0])[0].message
    html = message.get_body(("html",)).get_content()
    assert "<strong>mayor</strong>" in html and "https://letters.example/sign" in html
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # RFC 8058: the mail client POSTs to the List-Unsubscribe address, nothing else.
    one_click = message["List-Unsubscribe"][1:].split(">")[0].removeprefix(BASE)
    response = client.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "Unsubscribed" in response.text
    assert count_rows(notifier, "SELECT count(*) FROM subscribers WHERE email = :e "
                      "AND status = 'unsubscribed'", e=FOLLOWERS[0]) == 1  # fmt: skip

    # The cached pages follow as soon as the relay hands on the campaign's event.
    wait_for(lambda: "Lyon needs you" in client.get("/take-action").text,
             what="the archive to show the campaign")  # fmt: skip
    home = client.get("/").text
    section = home[home.index('id="action-title"') :]
    assert "Lyon needs you" in section and f"/take-action/{campaign_id}" in section
    assert "https://donate.sistercities.test/" in section
    page = client.get(f"/take-action/{campaign_id}")
    assert page.status_code == 200 and "<strong>mayor</strong>" in page.text
    # Raw HTML in the Markdown is shown as text, never as markup.
    assert "&lt;script&gt;alert" in page.text and "<script>alert" not in page.text
    body = page.text[page.text.index('<div class="content">') :]
    assert "<img" not in body and 'href="javascript' not in body
    assert client.get("/take-action/999999").status_code == 404
    assert client.get("/take-action?page=0").status_code == 404


def test_an_editor_writes_and_tries_a_campaign_but_cannot_send_it(
    gateway_app, stack, clean_databases, mail_sink
):
    add_member(clean_databases, "grace@example.org", "editor", "Grace Hopper", PASSWORD)
    editor = sign_in_with_password(gateway_app, "grace@example.org")
    csrf = {"X-CSRF-Token": api_csrf(editor)}
    created = editor.post("/api/v1/admin/campaigns", headers=csrf,
                          json={"subject": "Draft", "body": "Hello"})  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json["created_by"].startswith("Grace Hopper")
    campaign_id = created.json["id"]

    for path in (f"/api/v1/admin/campaigns/{campaign_id}/send",
                 f"/api/v1/admin/campaigns/{campaign_id}/unschedule"):  # fmt: skip
        refused = editor.post(path, headers=csrf, json={})
        assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert editor.get(f"/staff/campaigns/{campaign_id}").status_code == 200
    page = editor.get(f"/staff/campaigns/{campaign_id}")
    form = {"when": "now", "csrf_token": csrf_of(page)}
    assert editor.post(f"/staff/campaigns/{campaign_id}/send", data=form).status_code == 403

    # A test copy goes to the editor's own address whatever is asked, and is not on the ledger.
    tried = editor.post(f"/api/v1/admin/campaigns/{campaign_id}/test", headers=csrf,
                        json={"email": "someone.else@example.org"})  # fmt: skip
    assert tried.status_code == 202 and tried.json["email"] == "grace@example.org"
    wait_for(lambda: mail_sink.to("grace@example.org"), what="the test copy")
    assert mail_sink.to("someone.else@example.org") == []
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM deliveries") == 0
    history = count_rows(
        clean_databases["notifier"],
        "SELECT count(*) FROM audit_log WHERE actor_name LIKE 'Grace Hopper%'"
        " AND action IN ('campaign.created', 'campaign.test_requested')",
    )
    assert history == 2


def test_the_workspace_writes_previews_and_sends_a_campaign(
    gateway_app, stack, clean_databases, mail_sink
):
    add_subscribers(clean_databases["notifier"], [("ada@example.org", [], "confirmed")])
    add_member(clean_databases, "admin@example.org", "admin", "Ada Admin", PASSWORD)
    admin = sign_in_with_password(gateway_app, "admin@example.org")
    listing = admin.get("/staff/campaigns")
    assert listing.status_code == 200 and "No campaign yet" in listing.text
    form = {"subject": "Plant a tree", "body": "In *both* cities.", "cities": "", "countries": ""}
    refused = admin.post("/staff/campaigns", data={**form, "countries": "Finland",
                                                     "csrf_token": csrf_of(listing)})  # fmt: skip
    assert refused.status_code == 400 and "two-letter codes" in refused.text
    assert "Plant a tree" in refused.text  # the form keeps what was typed
    assert admin.post("/staff/campaigns", data=form).status_code == 400  # no CSRF token
    created = admin.post("/staff/campaigns", data={**form, "csrf_token": csrf_of(listing)})
    assert created.status_code == 303
    path = created.headers["Location"].removeprefix("http://localhost")
    campaign_id = int(re.search(r"/staff/campaigns/(\d+)", path).group(1))

    unknown = admin.get(f"{path}?email=nobody@example.org")
    assert unknown.status_code == 400 and unknown.text.count("no subscriber with this address") == 1
    page = admin.get(f"{path}?email=ada@example.org")
    assert (
        page.status_code == 200
        and "<em>both</em>" in page.text
        and "is in its audience" in page.text
    )
    assert "Send to 1 subscribers" in page.text
    refused_edit = admin.post(
        path, data={**form, "countries": "Finland", "csrf_token": csrf_of(page)}
    )
    assert refused_edit.status_code == 400 and refused_edit.text.count("two-letter codes") == 1
    sent = admin.post(f"/staff/campaigns/{campaign_id}/send",
                      data={"when": "now", "csrf_token": csrf_of(page)})  # fmt: skip
    assert sent.status_code == 303
    wait_for(lambda: mail_sink.to("ada@example.org"), timeout=60, what="the campaign")
    wait_for(lambda: "sent" in admin.get("/staff/campaigns").text, what="the list to say sent")
    assert len(mail_sink.to("ada@example.org")) == 1
