"""The staff dashboard at /admin with the real workers: signing in with the admin token (and a
CSRF token), the sections with what the services know, each one on its own when a service is
down, and signing out."""

import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import insert

from services.blog.models import Feed
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.notifier.models import Delivery, Subscriber
from tests.conftest import ADMIN_TOKEN, wait_until_answers

pytestmark = pytest.mark.integration

HOSTILE = '<script>alert("feed")</script><img src=x onerror=alert(1)>'


def csrf_token(client, path: str = "/admin/sign-in") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, token: str = ADMIN_TOKEN):
    return client.post("/admin/sign-in", data={"token": token, "csrf_token": csrf_token(client)})


@pytest.fixture
def staff(gateway_app):
    """A browser of its own: its session cookie is the sign-in."""
    return gateway_app.test_client()


@pytest.fixture
def seeded(clean_databases):
    """A failing feed whose error is hostile text, subscribers, and two digest periods."""
    now = datetime.now(UTC)
    with clean_databases["blog"].begin() as conn:
        conn.execute(insert(Feed).values(
            url="https://medium.com/feed/twinning", title="Twinning News", status="error",
            http_status=500, error_count=3, last_error=HOSTILE, created_at=now,
            last_fetched_at=now - timedelta(minutes=5), next_check_at=now + timedelta(hours=1),
            interval_seconds=3600,
        ))  # fmt: skip
    with clean_databases["notifier"].begin() as conn:
        subscribers = [
            {"email": f"reader{n}@example.org", "frequency": frequency, "weekday": 0,
             "city_ids": [], "status": status, "created_at": now, "soft_failures": 0}
            for n, (status, frequency) in enumerate(
                [("confirmed", "weekly")] * 3 + [("confirmed", "daily"), ("pending", "weekly")]
            )
        ]  # fmt: skip
        ids = conn.execute(insert(Subscriber).returning(Subscriber.id), subscribers).scalars().all()
        older = [("daily:2026-11-20", ids[3], "sent")]
        newest = [("weekly:2026-W48", ids[0], "sent"), ("weekly:2026-W48", ids[1], "sent"),
                  ("weekly:2026-W48", ids[2], "failed")]  # fmt: skip
        for period, subscriber_id, status in older + newest:
            conn.execute(insert(Delivery).values(
                subscriber_id=subscriber_id, period=period, status=status, stories=2,
                message_id=f"<digest.{period}.{subscriber_id}@sistercities.test>", attempts=1,
                created_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
                sent_at=datetime(2026, 11, 23, 8, 1, tzinfo=UTC) if status == "sent" else None,
                accepted_at=datetime(2026, 11, 23, 8, 1, tzinfo=UTC) if status == "sent" else None,
            ))  # fmt: skip
    return clean_databases


def test_the_dashboard_asks_for_the_token_first(staff):
    response = staff.get("/admin")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/sign-in")
    form = staff.get("/admin/sign-in")
    assert form.status_code == 200
    assert 'type="password"' in form.text and 'name="csrf_token"' in form.text
    assert form.headers["Cache-Control"] == "no-store"


def test_a_wrong_token_is_refused(staff):
    response = sign_in(staff, "not-the-admin-token-at-all")
    assert response.status_code == 401
    assert "not the admin token" in response.text
    assert staff.get("/admin").status_code == 303


def test_a_sign_in_without_the_csrf_token_is_refused(staff):
    response = staff.post("/admin/sign-in", data={"token": ADMIN_TOKEN})
    assert response.status_code == 400
    assert staff.get("/admin").status_code == 303


def test_staff_see_feeds_queues_digests_and_subscribers(staff, stack, seeded):
    signed_in = sign_in(staff)
    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/admin")
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ADMIN_TOKEN not in cookie

    page = staff.get("/admin")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    text = page.text
    # Feeds: health from the blog, the hostile error shown as text.
    assert "Twinning News" in text and "1 feed, 1 failing" in text
    assert "error (HTTP 500)" in text and ">3</td>" in text
    assert "&lt;script&gt;alert(&#34;feed&#34;)&lt;/script&gt;&lt;img src=x" in text
    assert "<script>alert" not in text and "<img src=x" not in text
    # Queues: straight from Redis.
    for queue in ("directory", "blog", "notifier", "staff"):
        assert re.search(rf'<th scope="row">{queue}</th><td class="num">\d+</td>', text), queue
    # The newest digest period, and the counts.
    assert "weekly:2026-W48: started" in text
    assert "2026-11-23 08:00 UTC" in text and "2026-11-23 08:01 UTC" in text
    assert "Deliveries: failed 1, sent 2." in text
    assert '<th scope="row">confirmed</th><td class="num">4</td>' in text
    assert '<th scope="row">pending</th><td class="num">1</td>' in text
    assert '<th scope="row">confirmed, weekly</th><td class="num">3</td>' in text
    assert '<th scope="row">all</th><td class="num">5</td>' in text
    assert "Every digest ever:\n    failed 1, sent 3;" in text


def test_the_api_reports_the_last_digest_run_too(client, stack, admin_headers, seeded):
    stats = client.get("/api/v1/admin/subscribers/stats", headers=admin_headers).json
    assert stats["last_digest_run"] == {
        "period": "weekly:2026-W48",
        "started_at": "2026-11-23T08:00:00+00:00",
        "last_sent_at": "2026-11-23T08:01:00+00:00",
        "deliveries": {"sent": 2, "failed": 1},
    }


def test_signing_out(staff, stack, clean_databases):
    sign_in(staff)
    assert staff.get("/admin").status_code == 200
    token = csrf_token(staff, "/admin")
    assert staff.post("/admin/sign-out").status_code == 400  # no CSRF token: refused
    assert staff.get("/admin").status_code == 200
    signed_out = staff.post("/admin/sign-out", data={"csrf_token": token})
    assert signed_out.status_code == 303
    assert signed_out.headers["Location"].endswith("/admin/sign-in")
    assert staff.get("/admin").status_code == 303


def test_a_new_admin_token_signs_everyone_out(staff, stack_env, stack, clean_databases):
    sign_in(staff)
    cookie = staff.get_cookie("session")
    rotated = create_app(
        GatewaySettings.from_env({**stack_env, "ADMIN_TOKEN": "another-token-0123456789"})
    )
    browser = rotated.test_client()
    browser.set_cookie("session", cookie.value, domain=cookie.domain)
    assert browser.get("/admin").status_code == 303
    # The same cookie, the same token: still signed in.
    same = create_app(GatewaySettings.from_env(stack_env)).test_client()
    same.set_cookie("session", cookie.value, domain=cookie.domain)
    assert same.get("/admin").status_code == 200


def test_without_a_configured_token_the_dashboard_is_off(stack_env):
    env = {k: v for k, v in stack_env.items() if k != "ADMIN_TOKEN"}
    browser = create_app(GatewaySettings.from_env(env)).test_client()
    for path in ("/admin", "/admin/sign-in"):
        response = browser.get(path)
        assert response.status_code == 403
        assert "dashboard is off" in response.text


def test_a_section_whose_service_is_down_says_so_and_the_rest_shows(
    staff, stack, stack_env, services, seeded
):
    sign_in(staff)
    stack.stop("blog")
    try:
        page = staff.get("/admin")
        queues = subprocess.run(
            [sys.executable, "-m", "sistercities", "queues"],
            env=stack_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        stack.start_worker("blog")
        wait_until_answers(services, "blog")
    assert page.status_code == 200
    assert "Feeds' health is unavailable: the blog service did not answer" in page.text
    assert "Twinning News" not in page.text
    assert '<th scope="row">blog</th><td class="num">' in page.text
    assert "weekly:2026-W48: started" in page.text
    # The command line reads the same queues: the dashboard's question waits in the blog's.
    assert queues.returncode == 0, queues.stderr
    assert re.search(r"^blog: [1-9]\d* waiting$", queues.stdout, re.M), queues.stdout
    assert re.search(r"^directory: \d+ waiting$", queues.stdout, re.M)


def test_signing_out_everywhere_ends_every_staff_session(stack_env, stack):
    # A token of its own: its session generation is counted apart from other tests'.
    token = f"everywhere-{uuid.uuid4().hex}"
    app = create_app(GatewaySettings.from_env({**stack_env, "ADMIN_TOKEN": token}))
    laptop, phone = app.test_client(), app.test_client()
    for browser in (laptop, phone):
        assert sign_in(browser, token).status_code == 303
        assert browser.get("/admin").status_code == 200
    dashboard = laptop.get("/admin").text
    assert "Sign out everywhere" in dashboard
    assert laptop.post("/admin/sign-out-everywhere").status_code == 400  # no CSRF token
    assert phone.get("/admin").status_code == 200

    ended = laptop.post(
        "/admin/sign-out-everywhere", data={"csrf_token": csrf_token(laptop, "/admin")}
    )
    assert ended.status_code == 303 and ended.headers["Location"].endswith("/admin/sign-in")
    for browser in (laptop, phone):
        assert browser.get("/admin").status_code == 303
    # Signing in again starts a session of the new generation.
    assert sign_in(phone, token).status_code == 303
    assert phone.get("/admin").status_code == 200


class MintedLongAgo(TimestampSigner):
    """Signs as Flask-WTF does, dated two hours back: a token kept since then."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 3600


def test_a_csrf_token_older_than_an_hour_is_refused(staff, stack):
    staff.get("/admin/sign-in")  # the session gets its CSRF secret
    with staff.session_transaction() as session:
        secret = session["csrf_token"]
    app_key = staff.application.secret_key
    old = URLSafeTimedSerializer(app_key, salt="wtf-csrf-token", signer=MintedLongAgo).dumps(secret)
    response = staff.post("/admin/sign-in", data={"token": ADMIN_TOKEN, "csrf_token": old})
    assert response.status_code == 400
    assert "reload the page" in response.text
    assert staff.get("/admin").status_code == 303  # not signed in
    assert sign_in(staff).status_code == 303  # a token of the page just loaded works
