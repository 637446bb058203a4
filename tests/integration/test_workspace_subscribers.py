"""The workspace's subscriber pages without a browser, against the real gateway and workers:
an admin finds a subscriber by address, sees their state and history, and acts through POST
forms that need their CSRF token (erasure asks first, on a page of its own); editors are
refused every page and form, and the nav does not offer them."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert

from services.notifier.models import Delivery, KnownCity
from shared.events import utcnow
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    csrf_of,
    sign_in_with_password,
)
from tests.notifier.test_subscriber_admin import add, texts_holding

pytestmark = pytest.mark.integration

ADDRESS = "Grace.Hopper@example.org"


@pytest.fixture
def admin(gateway_app, stack, clean_databases):
    return admin_client(gateway_app, clean_databases)


@pytest.fixture
def grace(clean_databases) -> int:
    engine = clean_databases["notifier"]
    subscriber_id = add(engine, ADDRESS, status="pending", cities=[31])
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(KnownCity).values(city_id=31, name="<b>Kuopio</b>", country_code="FI"))
        conn.execute(insert(Delivery).values(
            subscriber_id=subscriber_id, period="weekly:2026-W47", status="sent",
            message_id="<m@x>", stories=2, attempts=1, created_at=now,
            sent_at=now - timedelta(days=7),
        ))  # fmt: skip
    add(engine, "someone.else@example.org")
    return subscriber_id


def test_an_admin_finds_a_subscriber_and_sees_their_state(admin, grace):
    listed = admin.get("/staff/subscribers")
    assert listed.status_code == 200
    assert 'href="/staff/subscribers" aria-current="page"' in listed.text
    assert ADDRESS in listed.text and "someone.else@example.org" in listed.text
    found = admin.get("/staff/subscribers?q=GRACE")
    assert ADDRESS in found.text and "someone.else" not in found.text
    assert "Export every subscriber as CSV" in found.text
    refused = admin.get("/staff/subscribers?q=%01")
    assert refused.status_code == 400 and "printable" in refused.text

    page = admin.get(f"/staff/subscribers/{grace}")
    assert page.status_code == 200
    assert "<dd>pending</dd>" in page.text and "&lt;b&gt;Kuopio&lt;/b&gt;" in page.text
    assert re.search(r"<dt>Digests sent</dt><dd>1, the last ", page.text)
    assert admin.get("/staff/subscribers/999999").status_code == 404


def act(client, subscriber_id: int, action: str, **fields):
    # The members page always has a form (a subscriber's has none left for some states).
    data = {"csrf_token": csrf_of(client.get("/staff/members")), **fields}
    return client.post(f"/staff/subscribers/{subscriber_id}/{action}", data=data)


def test_an_admin_acts_through_forms_with_their_csrf_token(admin, grace, clean_databases):
    forged = admin.post(f"/staff/subscribers/{grace}/unsubscribe")
    assert forged.status_code == 400 and "form expired" in forged.text

    resent = act(admin, grace, "resend-confirmation")
    assert resent.status_code == 303
    page = admin.get(resent.headers["Location"])
    assert "Done: confirmation sent." in page.text and "<dd>2, the last " in page.text
    assert act(admin, grace, "unsubscribe").status_code == 303
    # No longer pending: the service refuses, and says so on the page.
    refused = act(admin, grace, "resend-confirmation")
    assert refused.status_code == 409 and "only a pending subscriber" in refused.text
    assert act(admin, grace, "archive").status_code == 404

    asked = admin.get(f"/staff/subscribers/{grace}/erase")
    assert asked.status_code == 200 and "cannot be undone" in asked.text
    unticked = admin.post(f"/staff/subscribers/{grace}/erase", data={"csrf_token": csrf_of(asked)})
    assert unticked.status_code == 400 and "Tick the box" in unticked.text
    assert texts_holding(clean_databases["notifier"], ADDRESS) != []
    erased = admin.post(
        f"/staff/subscribers/{grace}/erase",
        data={"csrf_token": csrf_of(asked), "confirm": "erase"},
    )
    assert erased.status_code == 303
    assert texts_holding(clean_databases["notifier"], ADDRESS) == []
    page = admin.get(erased.headers["Location"]).text
    assert f"Erased subscriber {grace}" in page and "<dd>erased</dd>" in page
    assert "Unsubscribe</button>" not in page
    history = re.findall(r"<td>Ada Admin &lt;ada@example.org&gt;</td>\s*<td>([a-z_.]+)</td>", page)
    assert history == [
        "subscriber.erased",
        "subscriber.unsubscribed",
        "subscriber.confirmation_resent",
    ]


def test_editors_are_refused_every_subscriber_page_and_form(
    gateway_app, stack, clean_databases, grace
):
    add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    editor = sign_in_with_password(gateway_app, "eve@example.org")
    feeds = editor.get("/staff/feeds")
    assert "/staff/subscribers" not in feeds.text
    token = csrf_of(feeds)
    for path in (
        "/staff/subscribers",
        f"/staff/subscribers/{grace}",
        f"/staff/subscribers/{grace}/erase",
    ):
        assert editor.get(path).status_code == 403, path
    for action in ("resend-confirmation", "unsubscribe", "erase"):
        posted = editor.post(
            f"/staff/subscribers/{grace}/{action}", data={"csrf_token": token, "confirm": "erase"}
        )
        assert posted.status_code == 403, action
    # Nothing was done: still pending, nothing on record.
    assert texts_holding(clean_databases["notifier"], ADDRESS) == ["subscribers.email"]
    admin_view = admin_client(gateway_app, clean_databases).get(f"/staff/subscribers/{grace}")
    assert "<dd>pending</dd>" in admin_view.text and "Nothing on record yet." in admin_view.text


def admin_client(gateway_app, clean_databases):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Admin", PASSWORD)
    return sign_in_with_password(gateway_app, "ada@example.org")
