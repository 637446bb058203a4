"""Staff sign-in end to end, with the real gateway, workers and SMTP server: a link mailed
through the notifier, a password, sessions that end at once when revoked, the limit on
attempts per address, roles, and the audit log naming who changed a partnership."""

import random
import re

import pytest
from sqlalchemy import insert

from services.staff.models import StaffMember
from services.staff.passwords import hash_password
from shared.events import utcnow
from tests.conftest import add_test_cities
from tests.stack import wait_for

pytestmark = pytest.mark.integration

BASE = "http://sistercities.test"
PASSWORD = "a long enough passphrase"


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def a_client_address() -> dict[str, str]:
    octets = (random.randrange(256), random.randrange(256), random.randrange(1, 255))
    return {"REMOTE_ADDR": "10.{}.{}.{}".format(*octets)}


def add_member(engines, email: str, role: str, name: str, password: str | None = None) -> int:
    with engines["staff"].begin() as conn:
        return conn.execute(
            insert(StaffMember)
            .values(
                email=email, name=name, role=role, created_at=utcnow(),
                password_hash=hash_password(password) if password else None,
            )
            .returning(StaffMember.id)
        ).scalar_one()  # fmt: skip


def ask(client, email: str, password: str = "", me: dict | None = None):
    page = client.get("/staff/sign-in", environ_base=me or {})
    return client.post(
        "/staff/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_of(page)},
        environ_base=me or {},
    )


def sign_in_with_password(gateway_app, email: str, password: str = PASSWORD):
    client = gateway_app.test_client()
    response = ask(client, email, password)
    assert response.status_code == 303, response.text
    assert response.headers["Location"].endswith("/staff")
    return client


def api_csrf(client) -> str:
    me = client.get("/api/v1/admin/staff/me")
    assert me.status_code == 200, me.text
    return me.json["csrf_token"]


def test_sign_in_by_the_link_mailed_to_the_address(gateway_app, stack, clean_databases, mail_sink):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Lovelace")
    client = gateway_app.test_client()
    asked = ask(client, "Ada@Example.org")
    assert asked.status_code == 200 and "Check your inbox" in asked.text
    # A stranger's address gets the same answer, and no mail.
    assert "Check your inbox" in ask(client, "nobody@example.org").text

    wait_for(lambda: mail_sink.to("ada@example.org"), what="the sign-in mail")
    (mail,) = mail_sink.to("ada@example.org")
    assert mail.message["List-Unsubscribe"] is None
    text = mail.message.get_body(("plain",)).get_content()
    path = re.search(rf"{re.escape(BASE)}(/staff/sign-in/[A-Za-z0-9_-]+)", text).group(1)

    landing = client.get(path)  # what a mail scanner would do: it signs nobody in
    assert landing.status_code == 200 and "staff_session" not in landing.headers.get(
        "Set-Cookie", ""
    )
    used = client.post(path, data={"csrf_token": csrf_of(landing)})
    assert used.status_code == 303
    cookie = used.headers["Set-Cookie"]
    assert "staff_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    home = client.get("/staff")
    assert home.status_code == 200 and "Signed in as Ada Lovelace" in home.text
    assert client.get("/api/v1/admin/staff/me").json["staff"]["email"] == "ada@example.org"

    again = gateway_app.test_client()
    page = again.get(path)
    assert again.post(path, data={"csrf_token": csrf_of(page)}).status_code == 400
    assert not mail_sink.to("nobody@example.org")


def test_password_sign_in_and_sign_out(gateway_app, stack, clean_databases):
    add_member(clean_databases, "grace@example.org", "editor", "Grace Hopper", PASSWORD)
    wrong = ask(gateway_app.test_client(), "grace@example.org", "not the passphrase")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    nobody = ask(gateway_app.test_client(), "nobody@example.org", PASSWORD)
    assert nobody.status_code == 401 and "do not match" in nobody.text

    client = sign_in_with_password(gateway_app, "grace@example.org")
    assert client.get("/api/v1/admin/staff/me").json["role"] == "editor"
    home = client.get("/staff")
    out = client.post("/staff/sign-out", data={"csrf_token": csrf_of(home)})
    assert out.status_code == 303
    assert client.get("/api/v1/admin/staff/me").status_code == 401


def test_a_revoked_session_stops_working_at_once(gateway_app, stack, clean_databases):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Lovelace", PASSWORD)
    laptop = sign_in_with_password(gateway_app, "ada@example.org")
    phone = sign_in_with_password(gateway_app, "ada@example.org")
    phone_session = phone.get("/api/v1/admin/staff/me").json["session_id"]
    listed = laptop.get("/api/v1/admin/staff/sessions").json["results"]
    assert phone_session in [session["id"] for session in listed]

    # Without the session's CSRF token a change made with the cookie is refused.
    refused = laptop.delete(f"/api/v1/admin/staff/sessions/{phone_session}")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
    assert phone.get("/api/v1/admin/staff/me").status_code == 200

    ended = laptop.delete(
        f"/api/v1/admin/staff/sessions/{phone_session}",
        headers={"X-CSRF-Token": api_csrf(laptop)},
    )
    assert ended.status_code == 200
    assert phone.get("/api/v1/admin/staff/me").status_code == 401
    assert phone.get("/staff").status_code == 303
    assert laptop.get("/api/v1/admin/staff/me").status_code == 200


def test_wrong_passwords_are_limited_per_address(gateway_app, stack, clean_databases):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Lovelace", PASSWORD)
    client, me = gateway_app.test_client(), a_client_address()
    for _ in range(5):  # STAFF_SIGN_IN_ADDRESS_LIMIT's default: 5 a minute
        assert ask(client, "ada@example.org", "a wrong guess!", me).status_code == 401
    limited = ask(client, "ada@example.org", PASSWORD, me)
    assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    # The mailed link is another way in, counted apart; and another address is not held back.
    assert ask(client, "ada@example.org", "", me).status_code == 200
    add_member(clean_databases, "grace@example.org", "editor", "Grace Hopper", PASSWORD)
    assert ask(client, "grace@example.org", PASSWORD, me).status_code == 303


def test_an_editor_is_refused_what_only_admins_may_do(gateway_app, stack, clean_databases):
    add_member(clean_databases, "grace@example.org", "editor", "Grace Hopper", PASSWORD)
    editor = sign_in_with_password(gateway_app, "grace@example.org")
    csrf = {"X-CSRF-Token": api_csrf(editor)}
    for method, path, body in [
        ("get", "/api/v1/admin/subscribers/stats", None),
        ("get", "/api/v1/admin/digests/preview?email=ada@example.org", None),
        ("post", "/api/v1/admin/digests/send", {"frequency": "weekly"}),
        ("get", "/api/v1/admin/staff", None),
        ("post", "/api/v1/admin/staff", {"email": "eve@example.org", "role": "admin"}),
    ]:
        response = getattr(editor, method)(path, json=body, headers=csrf)
        assert response.status_code == 403, (path, response.text)
        assert response.json["error"]["code"] == "forbidden"
    # Content is theirs to change.
    assert editor.get("/api/v1/admin/feeds").status_code == 200


def test_the_audit_log_names_who_changed_a_partnership(
    gateway_app, stack, clean_databases, admin_headers
):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Lovelace", PASSWORD)
    minneapolis, kuopio = add_test_cities(
        clean_databases["directory"],
        [("Minneapolis", "US", 44.98, -93.27, 425_000), ("Kuopio", "FI", 62.89, 27.68, 120_000)],
    )
    staff = sign_in_with_password(gateway_app, "ada@example.org")
    created = staff.post(
        "/api/v1/admin/partnerships",
        json={"city_id": minneapolis, "sister_city_id": kuopio, "since": 1972},
        headers={"X-CSRF-Token": api_csrf(staff)},
    )
    assert created.status_code == 201, created.text
    partnership = created.json["id"]
    machine = gateway_app.test_client()
    patched = machine.patch(
        f"/api/v1/admin/partnerships/{partnership}", json={"since": 1971}, headers=admin_headers
    )
    assert patched.status_code == 200

    history = staff.get(f"/api/v1/admin/audit?kind=partnership&id={partnership}")
    assert history.status_code == 200, history.text
    assert history.json["unavailable"] == []
    edited, added = history.json["results"]
    assert added["action"] == "partnership.created" and added["service"] == "directory"
    assert added["actor"]["id"].startswith("staff:")
    assert added["actor"]["name"] == "Ada Lovelace <ada@example.org>"
    assert {city["name"] for city in added["summary"]["cities"]} == {"Minneapolis", "Kuopio"}
    assert added["request_id"]
    assert edited["action"] == "partnership.updated"
    assert edited["actor"]["id"] == "token:admin"
    assert edited["summary"]["changes"] == {"since": {"before": 1972, "after": 1971}}

    # A partnership's changes are in both its cities' histories too.
    for city in (minneapolis, kuopio):
        of_city = staff.get(f"/api/v1/admin/audit?kind=city&id={city}").json["results"]
        assert [entry["id"] for entry in of_city] == [edited["id"], added["id"]]
    assert staff.get("/api/v1/admin/audit?kind=city&id=999999").json["results"] == []

    # The whole log, a page at a time: the sign-in (staff) and both changes, newest first.
    first = machine.get("/api/v1/admin/audit?limit=2", headers=admin_headers).json
    assert [entry["action"] for entry in first["results"]] == [
        "partnership.updated",
        "partnership.created",
    ]
    rest = machine.get(
        f"/api/v1/admin/audit?limit=2&cursor={first['next_cursor']}", headers=admin_headers
    ).json
    assert [entry["action"] for entry in rest["results"]] == ["session.opened"]
    assert rest["next_cursor"] is None


def test_feed_and_digest_changes_are_on_record_with_their_actor(
    gateway_app, stack, clean_databases, admin_headers
):
    add_member(clean_databases, "grace@example.org", "editor", "Grace Hopper", PASSWORD)
    editor = sign_in_with_password(gateway_app, "grace@example.org")
    csrf = {"X-CSRF-Token": api_csrf(editor)}
    # The discard port: the blog's fetch finds nothing there.
    added = editor.post("/api/v1/admin/feeds", json={"url": "http://127.0.0.1:9/feed.xml"},
                        headers=csrf)  # fmt: skip
    assert added.status_code == 201, added.text
    feed = added.json["id"]
    assert editor.post(f"/api/v1/admin/feeds/{feed}/poll", headers=csrf).status_code == 202
    machine = gateway_app.test_client()
    removed = machine.delete(f"/api/v1/admin/feeds/{feed}?stories=keep", headers=admin_headers)
    assert removed.status_code == 200
    sent = machine.post("/api/v1/admin/digests/send", json={"frequency": "daily"},
                        headers=admin_headers)  # fmt: skip
    assert sent.status_code == 202

    history = machine.get(f"/api/v1/admin/audit?kind=feed&id={feed}", headers=admin_headers)
    assert [(e["action"], e["actor"]["id"]) for e in history.json["results"]] == [
        ("feed.removed", "token:admin"),
        ("feed.poll_requested", added_by := history.json["results"][-1]["actor"]["id"]),
        ("feed.added", added_by),
    ]
    assert added_by.startswith("staff:")
    digests = machine.get("/api/v1/admin/audit?kind=digest&id=daily", headers=admin_headers)
    (entry,) = digests.json["results"]
    assert entry["service"] == "notifier" and entry["actor"]["id"] == "token:admin"
