"""Whole public pages cached in Redis per variant, stale as soon as a change moves a
generation they were made from, revalidated with ETags, the same bytes for every anonymous
visitor (their forms carry no token) and never served to or filled by a signed-in one."""

import re
import time

import pytest

from services.gateway.cache import PAGE_PREFIX
from services.gateway.site import subscriber_link
from services.gateway.web.page_cache import KeptPages
from tests.conftest import ADMIN_TOKEN
from tests.site.conftest import story
from tests.stack import wait_for

pytestmark = pytest.mark.integration

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
KEPT = "<p>this copy came from the page cache</p>"


@pytest.fixture(autouse=True)
def no_stored_pages(redis_client):
    """Pages an earlier test stored are stale (``clean_databases`` moved every generation) but
    still in Redis: these tests count what they store themselves."""
    for key in stored_pages(redis_client):
        redis_client.delete(key)


def get(client, path: str, **headers):
    response = client.get(path, headers={**BROWSER, **headers})
    assert response.status_code in (200, 304), response.text[:500]
    return response


def stored_pages(redis_client) -> list[bytes]:
    return list(redis_client.scan_iter(match=f"{PAGE_PREFIX}*", count=1000))


def mark_stored_pages(redis_client, gateway_app) -> int:
    """Every page in Redis marked as kept, and the gateway's memory of them dropped: a page
    served with the mark came from Redis, not from a new rendering."""
    keys = stored_pages(redis_client)
    for key in keys:
        value = redis_client.get(key)
        redis_client.set(key, value.replace(b"</main>", KEPT.encode() + b"</main>"), keepttl=True)
    gateway_app.extensions["sistercities"].cache.forget_local()
    return len(keys)


def sisters(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/cities/\d+">([^<]+)</a></th>', html)


def token_in(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_public_pages_are_served_from_the_cache(client, site_world, redis_client, gateway_app):
    cities, stories = site_world.cities, site_world.stories
    paths = ["/", f"/cities/{cities['Minneapolis']}", f"/blog/{stories['najaf']}",
             f"/blog?city={cities['Najaf']}", "/cities?q=Tours", "/cities"]  # fmt: skip
    first = {path: get(client, path).text for path in paths}
    assert mark_stored_pages(redis_client, gateway_app) == len(paths)
    for path in paths:
        again = get(client, path).text
        assert KEPT in again, path
        assert again.replace(KEPT, "") == first[path]


@pytest.fixture
def reaching_flask(gateway_app):
    """Every request that got past ``KeptPages`` to Flask, as (method, path, query)."""
    kept_pages = gateway_app.wsgi_app
    assert isinstance(kept_pages, KeptPages)
    flask, reached = kept_pages.wsgi_app, []

    def counted(environ, start_response):
        reached.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"]))
        return flask(environ, start_response)

    kept_pages.wsgi_app = counted
    yield reached
    kept_pages.wsgi_app = flask


def test_a_kept_page_is_answered_again_from_memory_as_flask_answered_it(
    gateway_app, site_world, reaching_flask
):
    city = f"/cities/{site_world.cities['Minneapolis']}"
    visitor = gateway_app.test_client(use_cookies=False)
    served = gateway_app.extensions["sistercities"].metrics.registry.get_sample_value
    for path, query in (("/", ""), (city, ""), (city, "sort=year")):
        address = f"{path}?{query}" if query else path
        counted = {"method": "GET", "route": "/" if path == "/" else "/cities/<int:city_id>"}
        first = get(visitor, address)
        before = served("gateway_requests_total", {**counted, "status": "200"})
        again = get(visitor, address, **{"X-Request-ID": "visit-2"})
        assert reaching_flask.pop() == ("GET", path, query)  # the first only
        assert again.data == first.data
        assert again.headers["X-Request-ID"] == "visit-2"
        own = {"X-Request-ID", "Date"}
        assert [h for h in again.headers if h[0] not in own] == [
            h for h in first.headers if h[0] not in own
        ]
        assert served("gateway_requests_total", {**counted, "status": "200"}) == before + 1
    assert reaching_flask == []

    # Whatever a request carries that Flask must read takes it to Flask, every time.
    etag = get(visitor, "/").headers["ETag"]
    asked = [
        ("/", {"Cookie": "session=x"}),
        ("/", {"Authorization": "Bearer not-a-token"}),
        ("/", {"If-None-Match": etag}),
        ("/cities?q=Tours", {}),  # rate-limited: every request counts
        ("/cities?q=Tours", {}),
    ]
    for address, headers in asked:
        visitor.get(address, headers={**BROWSER, **headers})
    visitor.head("/", headers=BROWSER)
    assert [f"{method} {path}" for method, path, _query in reaching_flask] == [
        "GET /", "GET /", "GET /", "GET /cities", "GET /cities", "HEAD /",
    ]  # fmt: skip


def test_a_new_partnership_shows_on_the_next_request(client, site_world, services, redis_client):
    minneapolis = f"/cities/{site_world.cities['Minneapolis']}"
    assert "Köln" not in sisters(get(client, minneapolis).text)
    assert stored_pages(redis_client)
    services.call(
        "directory.create_partnership", site_world.cities["Minneapolis"], site_world.cities["Köln"]
    )
    # The event moves the directory's generation when the relay delivers it.
    wait_for(
        lambda: "Köln" in sisters(get(client, minneapolis).text),
        timeout=20,
        what="the city page to show the new sister",
    )


def test_a_new_story_shows_on_the_next_request(client, site_world, redis_client):
    assert "Harbin lanterns" not in get(client, "/").text
    assert stored_pages(redis_client)
    site_world.add_stories([(story("harbin", "Harbin lanterns", 0), [])])
    wait_for(
        lambda: "Harbin lanterns" in get(client, "/").text,
        timeout=20,
        what="the home page to show the new story",
    )


def test_a_revisit_with_the_etag_is_a_304(client, gateway_app, site_world):
    najaf = f"/blog/{site_world.stories['najaf']}"
    first = get(client, najaf)
    assert first.headers["Cache-Control"] == "public, no-cache"
    again = get(client, najaf, **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""

    # A page with a form is the same bytes for everyone too: public, a strong ETag, and a
    # stranger's revisit with it is a 304 as well.
    home = get(client, "/")
    assert home.headers["Cache-Control"] == "public, no-cache"
    assert not home.headers["ETag"].startswith("W/")
    revisit = get(client, "/", **{"If-None-Match": home.headers["ETag"]})
    assert revisit.status_code == 304 and revisit.data == b""
    stranger = gateway_app.test_client()
    assert get(stranger, "/", **{"If-None-Match": home.headers["ETag"]}).status_code == 304

    site_world.add_stories([(story("tours", "Tours by night", 0), [])])
    wait_for(
        lambda: get(client, "/", **{"If-None-Match": home.headers["ETag"]}).status_code == 200,
        timeout=20,
        what="the home page to change",
    )


def test_each_variant_gets_its_own_page(client, site_world, redis_client):
    minneapolis = f"/cities/{site_world.cities['Minneapolis']}"
    for _ in range(2):  # filled, then from the cache
        assert sisters(get(client, minneapolis).text) == ["Tours", "Uppsala", "Harbin", "Najaf"]
        assert sisters(get(client, f"{minneapolis}?sort=year").text)[:3] == [
            "Tours",
            "Harbin",
            "Najaf",
        ]
        assert sisters(get(client, f"{minneapolis}?sort=name").text) == sorted(
            ["Tours", "Uppsala", "Harbin", "Najaf"]
        )
        assert "Uppsala" in get(client, "/cities?q=Uppsala").text
        assert "Uppsala" not in get(client, "/cities?q=Tours").text
    # A parameter the page does not read makes no variant of its own.
    before = len(stored_pages(redis_client))
    get(client, f"{minneapolis}?utm_source=mail")
    assert len(stored_pages(redis_client)) == before


def test_a_first_visit_gets_the_same_bytes_as_anyone_and_no_cookie(
    gateway_app, site_world, redis_client, clean_databases, mail_sink
):
    ada, bob = gateway_app.test_client(), gateway_app.test_client()
    for path in ("/", f"/cities/{site_world.cities['Minneapolis']}"):
        filled, served = get(ada, path), get(bob, path)  # rendered and kept, then from the cache
        for response in (filled, served):
            assert "Set-Cookie" not in response.headers, path
            assert "Cookie" in response.headers["Vary"]
            assert response.headers["Cache-Control"] == "public, no-cache"
            assert 'action="/subscribe"' in response.text and "csrf_token" not in response.text
        assert filled.data == served.data and filled.headers["ETag"] == served.headers["ETag"]
    assert len(stored_pages(redis_client)) == 2

    # The form works as it came, sent from this site by a browser that holds no session.
    form = {"email": "ada@example.org", "city_ids": [str(site_world.cities["Minneapolis"])]}
    sent = ada.post("/subscribe", data=form, headers={"Sec-Fetch-Site": "same-origin"})
    assert sent.status_code == 303
    wait_for(lambda: mail_sink.to("ada@example.org"), what="the confirmation mail")


def test_signed_in_staff_neither_get_nor_fill_the_cache(gateway_app, site_world, redis_client):
    staff = gateway_app.test_client()
    form = staff.get("/admin/sign-in").text
    signed_in = staff.post(
        "/admin/sign-in", data={"token": ADMIN_TOKEN, "csrf_token": token_in(form)}
    )
    assert signed_in.status_code in (302, 303)
    city = f"/cities/{site_world.cities['Minneapolis']}"
    get(staff, city)
    get(staff, "/")
    assert stored_pages(redis_client) == []

    get(gateway_app.test_client(), city)
    assert mark_stored_pages(redis_client, gateway_app) == 1
    assert KEPT not in get(staff, city).text
    assert KEPT in get(gateway_app.test_client(), city).text


def test_a_browser_that_just_opened_a_mail_link_is_rendered_for_itself(
    gateway_app, site_world, redis_client
):
    city = f"/cities/{site_world.cities['Minneapolis']}"
    subscriber = gateway_app.test_client()
    with subscriber.session_transaction() as session:
        session[subscriber_link.KEY] = ["t0ken", int(time.time())]
    get(subscriber, city)
    assert stored_pages(redis_client) == []

    get(gateway_app.test_client(), city)
    assert mark_stored_pages(redis_client, gateway_app) == 1
    assert KEPT not in get(subscriber, city).text
    # A session holding only a CSRF token (a link page's form seen) has nothing of its own
    # that a kept page could miss.
    visitor = gateway_app.test_client()
    with visitor.session_transaction() as session:
        session["csrf_token"] = "a" * 40
    assert KEPT in get(visitor, city).text
