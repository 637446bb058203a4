"""Guessing ADMIN_TOKEN: wrong tokens on the sign-in form and the admin API share one small
budget per client address, the real token is never limited, and refusals are logged with the
client and the route, never the token."""

import random
import re

import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def limited_app(stack_env):
    return create_app(GatewaySettings.from_env({**stack_env, "SIGN_IN_RATE_LIMIT": "3/minute"}))


def a_client_address() -> dict[str, str]:
    # An address of its own, so that runs sharing a Redis do not count together.
    octets = (random.randrange(256), random.randrange(256), random.randrange(1, 255))
    return {"REMOTE_ADDR": "10.{}.{}.{}".format(*octets)}


def sign_in(client, token: str, me: dict):
    page = client.get("/admin/sign-in", headers=BROWSER, environ_base=me).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(
        "/admin/sign-in",
        data={"token": token, "csrf_token": csrf},
        headers=BROWSER,
        environ_base=me,
    )


def test_wrong_admin_tokens_are_limited_per_client_on_the_form_and_the_api(limited_app, stack):
    client, me = limited_app.test_client(), a_client_address()
    assert sign_in(client, "a-wrong-guess-0123456789", me).status_code == 401
    feeds = "/api/v1/admin/feeds"
    wrong = {"Authorization": "Bearer another-wrong-guess-0123"}
    assert client.get(feeds, headers=wrong, environ_base=me).status_code == 401
    assert client.get(feeds, headers=wrong, environ_base=me).status_code == 401
    # The fourth guess, by either way in, is refused before the token is even compared.
    refused = client.get(feeds, headers=wrong, environ_base=me)
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    page = sign_in(client, ADMIN_TOKEN, me)
    assert page.status_code == 429 and "Too many requests" in page.text
    assert 0 < int(page.headers["Retry-After"]) <= 60
    # Another client is not held back by this one.
    other = a_client_address()
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get(feeds, headers=right, environ_base=other).status_code == 200


def test_the_real_admin_token_is_never_limited(limited_app, stack):
    client, me = limited_app.test_client(), a_client_address()
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answers = {
        client.get("/api/v1/admin/feeds", headers=right, environ_base=me).status_code
        for _ in range(10)
    }
    assert answers == {200}
    assert sign_in(client, ADMIN_TOKEN, me).status_code == 303


def test_a_refused_token_is_logged_with_the_client_and_route_but_not_the_token(
    limited_app, stack, caplog, capsys
):
    client, me = limited_app.test_client(), a_client_address()
    guesses = [f"guess-number-{n}-{random.getrandbits(64):x}" for n in range(5)]
    for guess in guesses[:3]:
        client.get(
            "/api/v1/admin/feeds", headers={"Authorization": f"Bearer {guess}"}, environ_base=me
        )
    sign_in(client, guesses[3], me)
    sign_in(client, guesses[4], me)

    printed = capsys.readouterr()
    for guess in guesses:
        assert guess not in caplog.text + printed.out + printed.err
    events = [record.msg for record in caplog.records if isinstance(record.msg, dict)]
    refusals = [e for e in events if e.get("event", "").startswith("admin_token_")]
    assert [(e["event"], e["client"], e["route"]) for e in refusals] == [
        ("admin_token_refused", me["REMOTE_ADDR"], "/api/v1/admin/feeds"),
        ("admin_token_refused", me["REMOTE_ADDR"], "/api/v1/admin/feeds"),
        ("admin_token_refused", me["REMOTE_ADDR"], "/api/v1/admin/feeds"),
        ("admin_token_attempts_limited", me["REMOTE_ADDR"], "/admin/sign-in"),
        ("admin_token_attempts_limited", me["REMOTE_ADDR"], "/admin/sign-in"),
    ]
