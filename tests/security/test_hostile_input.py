"""Hostile text through every input that reaches a page or an email: the 25 XSS payloads of
../shared/corpora/xss_payloads.txt and header-injection strings, as a city's name, a story's
title, author, excerpt and tag, a search, a subscriber's address. What comes out is escaped
text, never markup, and no header is ever added."""

import dataclasses
from datetime import timedelta
from email import message_from_string, policy
from urllib.parse import quote

import pytest
from markupsafe import escape
from sqlalchemy import insert

from services.notifier.models import Subscriber
from shared.events import utcnow
from tests.conftest import SHARED_DIR, add_test_cities
from tests.integration.test_subscriptions_end_to_end import announce_story
from tests.site.conftest import story
from tests.stack import wait_for

pytestmark = pytest.mark.integration

PAYLOADS_FILE = SHARED_DIR / "corpora" / "xss_payloads.txt"
HEADER_INJECTIONS = [
    "a@b.c\r\nBcc: x@y.z",
    "x\r\nSet-Cookie: owned=1",
    "x%0d%0aSet-Cookie: owned=1",
]
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def payloads() -> list[str]:
    if not PAYLOADS_FILE.exists():
        pytest.skip(f"the hostile payloads are not at {PAYLOADS_FILE}")
    lines = PAYLOADS_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def assert_inert(body: str, text: str) -> None:
    """``text`` shows, if at all, as text: never as the markup it holds."""
    if "<" in text or ">" in text:
        assert text not in body, f"unescaped: {text[:80]}"
    assert "<script" not in body.lower().replace('<script src="/static/', "")


def test_the_corpus_is_all_there():
    assert len(payloads()) == 25


def test_searches_and_filters_reflect_nothing(client, stack):
    for text in payloads() + HEADER_INJECTIONS:
        for path in (f"/cities?q={quote(text)}", f"/blog?tag={quote(text)}"):
            response = client.get(path, headers=BROWSER)
            assert response.status_code in (200, 400), (path, response.status_code)
            assert_inert(response.text, text)
            assert "owned" not in str(response.headers)
        api = client.get("/api/v1/cities", query_string={"q": text[:200]})
        assert "<" not in api.get_data(as_text=True)


def test_hostile_city_names_and_stories_show_as_text(client, stack, clean_databases, redis_client):
    from shared.routing import GENERATION_KEY
    from tests.site.conftest import add_stories

    texts = payloads()
    places = [(text[:150], "US", 10.0 + n, 20.0 + n, 20_000) for n, text in enumerate(texts[:8])]
    city_ids = add_test_cities(clean_databases["directory"], places)
    hostile = [
        dataclasses.replace(
            story(f"hostile-{n}", text, n + 1),
            author=text[:300],
            excerpt=text,
            tags=[{"slug": f"tag-{n}", "name": text[:100]}],
        )
        for n, text in enumerate(texts)
    ]
    post_ids = add_stories(clean_databases["blog"], [(data, city_ids[:2]) for data in hostile])
    redis_client.incr(GENERATION_KEY.format("blog"))

    def shows_the_cities() -> bool:
        return client.get(f"/cities/{city_ids[0]}", headers=BROWSER).status_code == 200

    wait_for(shows_the_cities, timeout=20, what="the directory to know the hostile cities")
    pages = ["/", "/blog", f"/cities/{city_ids[0]}", f"/cities/{city_ids[1]}"]
    pages += [f"/blog/{post_id}" for post_id in post_ids[:5]]
    for path in pages:
        body = client.get(path, headers=BROWSER).text
        for text in texts:
            assert_inert(body, text)
    # Escaped, not dropped: the reader sees what the feed said.
    first = client.get(f"/blog/{post_ids[0]}", headers=BROWSER).text
    assert str(escape(texts[0])) in first

    feed = client.get("/feed.xml").get_data(as_text=True)
    for text in texts:
        assert_inert(feed, text)


def test_a_digest_of_hostile_stories_is_escaped_in_its_html(
    client, stack, clean_databases, admin_headers
):
    address = "reader@example.org"
    confirmed = utcnow() - timedelta(days=1)
    with clean_databases["notifier"].begin() as conn:
        conn.execute(insert(Subscriber).values(
            email=address, frequency="weekly", weekday=0, city_ids=[], status="confirmed",
            created_at=confirmed, confirmed_at=confirmed, soft_failures=0,
        ))  # fmt: skip
    texts = payloads()
    for n, text in enumerate(texts[:10]):
        announce_story(clean_databases, 9000 + n, [], title=text)

    def preview():
        answer = client.get(f"/api/v1/admin/digests/preview?email={address}", headers=admin_headers)
        return answer.json if answer.status_code == 200 and answer.json["stories"] == 10 else None

    digest = wait_for(preview, timeout=30, what="the notifier to hear of the stories")
    message = message_from_string(digest["message"], policy=policy.default)
    html = message.get_body(("html",)).get_content()
    for text in texts[:10]:
        assert_inert(html, text)
    assert "Bcc" not in str(message.keys())


def test_a_subscriber_address_cannot_add_a_header(client, stack):
    for text in HEADER_INJECTIONS:
        response = client.post("/api/v1/subscriptions", json={"email": text})
        assert response.status_code == 400
        assert "owned" not in str(response.headers)
