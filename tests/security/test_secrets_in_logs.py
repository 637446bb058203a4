"""Secrets never reach a log: not SECRET_KEY, not ADMIN_TOKEN, not the signed tokens in
confirmation, unsubscribe and preferences links, in the gateway's log or the workers'."""

import re

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.integration.test_subscriptions_end_to_end import confirm_by_page, link_path
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_no_secret_or_signed_token_is_logged(
    client, stack, stack_env, clean_databases, mail_sink, admin_headers, capsys
):
    address = "quiet@example.org"
    client.post("/api/v1/subscriptions", json={"email": address, "frequency": "daily"})
    mail = wait_for(lambda: mail_sink.to(address), what="the confirmation mail")[0].message
    text = mail.get_body(("plain",)).get_content()
    confirm = link_path(text, "subscriptions/confirm")
    page = confirm_by_page(client, confirm)
    preferences = re.search(r'href="(/preferences/[^"]+)"', page.text).group(1)
    settings = client.get(preferences)
    unsubscribe = re.search(r'href="(/unsubscribe/[^"]+)"', settings.text).group(1)
    client.get(unsubscribe)
    client.get("/api/v1/admin/subscribers/stats", headers=admin_headers)
    client.get("/api/v1/admin/feeds", headers={"Authorization": "Bearer not-the-token-at-all"})
    client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})

    secrets = {
        "SECRET_KEY": stack_env["SECRET_KEY"],
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "confirm token": confirm.rsplit("/", 1)[1],
        "preferences token": preferences.rsplit("/", 1)[1],
        "unsubscribe token": unsubscribe.rsplit("/", 1)[1],
    }
    captured = capsys.readouterr()
    logs = {"gateway": captured.out + captured.err}
    logs.update({name: stack.log(name) for name in stack.processes})
    for process, log in logs.items():
        for what, value in secrets.items():
            assert value not in log, f"{what} is in the {process} log"


def test_no_staff_password_sign_in_link_or_session_id_is_logged(
    gateway_app, stack, clean_databases, mail_sink, capsys
):
    from tests.integration.test_staff_end_to_end import (
        PASSWORD,
        add_member,
        ask,
        csrf_of,
        sign_in_with_password,
    )

    add_member(clean_databases, "quiet.staff@example.org", "admin", "Quiet Staff", PASSWORD)
    by_password = sign_in_with_password(gateway_app, "quiet.staff@example.org")
    session_token = by_password.get_cookie("staff_session").value
    assert by_password.get("/api/v1/admin/staff/me").status_code == 200
    ask(gateway_app.test_client(), "quiet.staff@example.org", "a wrong passphrase here")

    by_link = gateway_app.test_client()
    ask(by_link, "quiet.staff@example.org")
    mail = wait_for(lambda: mail_sink.to("quiet.staff@example.org"), what="the sign-in mail")
    link = re.search(r"/staff/sign-in/[A-Za-z0-9_-]+", mail[0].message.get_body(("plain",))
                     .get_content()).group(0)  # fmt: skip
    by_link.post(link, data={"csrf_token": csrf_of(by_link.get(link))})
    link_session = by_link.get_cookie("staff_session").value

    secrets = {
        "password": PASSWORD,
        "wrong password": "a wrong passphrase here",
        "session id": session_token,
        "link token": link.rsplit("/", 1)[1],
        "session id from the link": link_session,
    }
    captured = capsys.readouterr()
    logs = {"gateway": captured.out + captured.err}
    logs.update({name: stack.log(name) for name in stack.processes})
    for process, log in logs.items():
        for what, value in secrets.items():
            assert value not in log, f"{what} is in the {process} log"
