"""What protects the site: headers and a strict CSP, CSRF protection on forms (the public
forms by where the browser says they come from, the others by a token), rate limits in Redis,
fingerprinted files, body limits. The subscribe form runs against the real notifier."""

import random
import re

import pytest
from flask import Flask, request

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.web.security import CONTENT_SECURITY_POLICY, from_this_site
from tests.conftest import count_rows
from tests.stack import wait_for

pytestmark = pytest.mark.integration

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
# The test client's own origin is http://localhost; the settings' PUBLIC_BASE_URL is
# http://sistercities.test.
FROM_ANOTHER_SITE = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    # The browser's word comes first: an Origin that looks like ours does not outweigh it.
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://shop.localhost"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "https://localhost"},  # another scheme is another origin
]
FROM_THIS_SITE = [
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "http://localhost"},
    {"Origin": "http://sistercities.test"},
    {},  # not a browser: nothing a forged cross-site form could send
]


@pytest.mark.parametrize("path", ["/", "/subscribe", "/api/v1/posts", "/healthz", "/no/such"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [(h, False) for h in FROM_ANOTHER_SITE] + [(h, True) for h in FROM_THIS_SITE],
)
def test_where_a_public_form_comes_from_is_what_the_browser_says(headers, allowed):
    app = Flask(__name__)
    with app.test_request_context("/subscribe", method="POST", headers=headers):
        assert from_this_site(request, "http://sistercities.test") is allowed


def test_a_public_form_sent_from_another_site_is_refused_and_changes_nothing(
    client, stack, clean_databases, mail_sink
):
    forged = "forged@example.org"
    for headers in FROM_ANOTHER_SITE:
        refused = client.post(
            "/subscribe",
            data={"email": forged, "frequency": "daily"},
            headers={**BROWSER, **headers},
        )
        assert refused.status_code == 403, headers
        assert "did not come from this site" in refused.text

    # The page's own form carries no token: from this site, or from no browser, it works.
    addresses = [f"ada{n}@example.org" for n in range(len(FROM_THIS_SITE))]
    for address, headers in zip(addresses, FROM_THIS_SITE, strict=True):
        sent = client.post(
            "/subscribe",
            data={"email": address, "frequency": "daily", "city_ids": ["7", "8"]},
            headers={**BROWSER, **headers},
        )
        assert sent.status_code == 303, headers
        assert sent.headers["Location"].endswith("/subscribe/check-your-inbox")
    for address in addresses:
        wait_for(lambda address=address: mail_sink.to(address), what="the confirmation mail")
    assert not mail_sink.to(forged)
    subscribers = "SELECT count(*) FROM subscribers WHERE email = :email"
    assert count_rows(clean_databases["notifier"], subscribers, email=forged) == 0
    assert count_rows(clean_databases["notifier"], subscribers, email=addresses[0]) == 1


def test_the_other_forms_still_need_their_csrf_token(client, stack):
    # Where it came from is not enough where a form has a token: a subscriber's link page.
    for path in ("/subscriptions/confirm/made-up", "/staff/sign-in"):
        response = client.post(
            path, data={"email": "x"}, headers={**BROWSER, "Sec-Fetch-Site": "same-origin"}
        )
        assert response.status_code == 400 and "reload the page" in response.text, path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "a@b.c\r\nBcc: x@y.z"}, "email"),
        ({"email": "<script>alert(1)</script>@example.org"}, "email"),
        ({"email": "ok@example.org", "frequency": "hourly"}, "frequency"),
        ({"email": "ok@example.org", "city_ids": ["<b>7</b>"]}, "Choose cities"),
    ],
)
def test_a_bad_subscription_is_shown_again_with_the_reason(client, stack, fields, message):
    response = client.post("/subscribe", data=fields, headers=BROWSER)
    assert response.status_code == 400
    assert message in response.text
    assert "<script>alert" not in response.text and "<b>7" not in response.text
    assert 'role="alert"' in response.text


def test_one_click_unsubscribe_needs_no_csrf_token(client, stack):
    # No session, no token: the signed link is the authority (a forged one is refused).
    response = client.post("/unsubscribe/forged-token", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert "csrf" not in response.text.lower()


@pytest.fixture
def limited_app(stack_env):
    env = {**stack_env, "SEARCH_RATE_LIMIT": "3/minute", "SUBSCRIBE_RATE_LIMIT": "2/minute"}
    return create_app(GatewaySettings.from_env(env))


def test_search_and_subscribe_are_rate_limited_per_client(limited_app, stack):
    # A client address of its own, so that runs sharing a Redis do not count together.
    me = {"REMOTE_ADDR": f"10.{random.randrange(256)}.{random.randrange(256)}.7"}
    client = limited_app.test_client()
    answers = [
        client.get("/api/v1/cities", query_string={"q": "x"}, environ_base=me).status_code
        for _ in range(4)
    ]
    assert answers[:3] != [429] * 3 and answers[3] == 429
    limited = client.get("/api/v1/cities", query_string={"q": "x"}, environ_base=me)
    assert limited.json["error"]["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    page = client.get("/cities?q=x", headers=BROWSER, environ_base=me)
    assert page.status_code == 429 and "Too many requests" in page.text
    # Another client is not held back by this one.
    other = {"REMOTE_ADDR": "10.255.255.1" if me["REMOTE_ADDR"] != "10.255.255.1" else "10.0.0.1"}
    assert client.get("/subscribe", environ_base=other).status_code == 200

    for _ in range(3):  # the form page is free; sending it is limited
        assert client.get("/subscribe", environ_base=me).status_code == 200
    sends = [
        client.post("/api/v1/subscriptions", json={"email": "x"}, environ_base=me).status_code
        for _ in range(3)
    ]
    assert sends == [400, 400, 429]


def test_site_files_have_fingerprinted_addresses_cached_for_a_year(client):
    html = client.get("/subscribe", headers=BROWSER).text
    css = re.search(r'href="(/static/([0-9a-f]{12})/site\.css)"', html)
    response = client.get(css.group(1))
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert "immutable" in response.headers["Cache-Control"]
    assert "max-age=31536000" in response.headers["Cache-Control"]
    response.close()
    stale = client.get("/static/000000000000/site.css")
    assert stale.status_code == 302 and stale.headers["Location"].endswith(css.group(1))
    assert client.get("/static/000000000000/../config.py").status_code == 404
    assert client.get(f"/static/{css.group(2)}/nothing.js").status_code == 404


def test_a_huge_form_is_refused(client, gateway_app):
    limit = gateway_app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/subscribe", data={"email": "x" * (limit + 10)}, headers=BROWSER)
    assert response.status_code == 413


def test_api_answers_carry_an_etag_and_revalidate(client, site_world):
    first = client.get("/api/v1/cities", query_string={"q": "Najaf"})
    assert first.status_code == 200 and first.json["results"]
    assert first.headers["Cache-Control"] == "public, max-age=30"
    etag = first.headers["ETag"]
    again = client.get(
        "/api/v1/cities", query_string={"q": "Najaf"}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.data == b""
    other = client.get(
        "/api/v1/cities", query_string={"q": "Tours"}, headers={"If-None-Match": etag}
    )
    assert other.status_code == 200 and other.headers["ETag"] != etag


def test_behind_a_trusted_proxy_each_visitor_has_a_budget_of_their_own(stack_env, stack):
    limits = {"SEARCH_RATE_LIMIT": "2/minute"}
    proxied = create_app(GatewaySettings.from_env({**stack_env, **limits, "TRUSTED_PROXIES": "1"}))
    direct = create_app(GatewaySettings.from_env({**stack_env, **limits}))
    proxy = {"REMOTE_ADDR": f"10.{random.randrange(256)}.{random.randrange(256)}.9"}

    def searches(app, visitor: str) -> list[int]:
        client = app.test_client()
        headers = {"X-Forwarded-For": visitor}
        return [
            client.get("/cities?q=x", headers=headers, environ_base=proxy).status_code
            for _ in range(3)
        ]

    visitors = [f"192.0.2.{random.randrange(1, 255)}", f"198.51.100.{random.randrange(1, 255)}"]
    for visitor in visitors:  # each visitor's third search is refused, not the whole site's
        assert searches(proxied, visitor) == [200, 200, 429]
    # Without the setting a forged header buys nothing: the proxy's address is the client.
    direct_answers = searches(direct, visitors[0]) + searches(direct, visitors[1])
    assert direct_answers.count(429) == 4


def test_an_ipv6_client_is_counted_per_64_and_a_mapped_ipv4_as_its_ipv4(stack_env, stack):
    app = create_app(GatewaySettings.from_env({**stack_env, "SEARCH_RATE_LIMIT": "2/minute"}))
    client = app.test_client()
    line = f"2001:db8:{random.randrange(65536):x}:{random.randrange(65536):x}"

    def search(address: str) -> int:
        return client.get("/cities?q=x", environ_base={"REMOTE_ADDR": address}).status_code

    # One subscriber line holds a whole /64: new addresses in it buy no new budget.
    assert [search(f"{line}::{host:x}") for host in (1, 2, 0xBEEF)] == [200, 200, 429]
    assert search(f"{line[:-1]}{'0' if line[-1] != '0' else '1'}::1") == 200  # the next /64

    v4 = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    assert [search(v4), search(f"::ffff:{v4}"), search(v4)] == [200, 200, 429]
