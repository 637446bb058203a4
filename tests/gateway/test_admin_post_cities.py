"""Staff correct a story's cities through the admin API with the real workers: each link shows
the evidence that made it; a city removed or added stays so when the story is polled again
after an edit; the story's API, the city lists and the notifier's copy (what digests are
made of) follow; the cities of a feed's organisation are evidence for its stories."""

import json

import pytest
from sqlalchemy import text

from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def feed(description: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Twinning News</title><link>https://news.example.org/</link>
<item><title>Delegates meet</title><link>https://news.example.org/delegates</link>
<guid isPermaLink="false">delegates-1</guid><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>
<description>{description}</description></item></channel></rss>"""


@pytest.fixture
def feed_server():
    with FeedServer() as server:
        yield server


def listed(client, city_id: int) -> list[int]:
    response = client.get(f"/api/v1/posts?city_id={city_id}")
    assert response.status_code == 200, response.json
    return [post["id"] for post in response.json["results"]]


def notifier_cities(engines, post_id: int) -> list[int]:
    with engines["notifier"].connect() as conn:
        row = conn.execute(
            text("SELECT city_ids FROM stories WHERE post_id = :id"), {"id": post_id}
        ).scalar()
    # A JSON column read by plain SQL: decoded by PostgreSQL's driver, text on SQLite.
    return sorted(json.loads(row) if isinstance(row, str) else row) if row is not None else row


def linked(client, admin_headers, post_id: int) -> dict:
    response = client.get(f"/api/v1/admin/posts/{post_id}/cities", headers=admin_headers)
    assert response.status_code == 200, response.json
    return response.json


def test_staff_corrections_of_a_storys_cities_hold_and_everything_follows_them(
    client, admin_headers, three_cities, engines, feed_server
):
    alphaville, betaburg, gammaton = three_cities
    url = feed_server.serve("/news", feed("Delegates from Alphaville visited the mayor."))
    response = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers)
    assert response.status_code == 201, response.json
    feed_id = response.json["id"]
    [post_id] = wait_for(lambda: listed(client, alphaville), what="the story linked to Alphaville")

    links = linked(client, admin_headers, post_id)
    assert links["cities"] == [
        {"city_id": alphaville, "source": "found", "evidence": ["'from Alphaville'"]}
    ]
    assert client.get(f"/api/v1/admin/posts/{post_id}/cities").status_code == 401

    removed = client.delete(
        f"/api/v1/admin/posts/{post_id}/cities/{alphaville}", headers=admin_headers
    )
    assert removed.status_code == 200, removed.json
    assert removed.json["cities"] == []
    added = client.post(
        f"/api/v1/admin/posts/{post_id}/cities", json={"city_id": gammaton}, headers=admin_headers
    )
    assert added.status_code == 200, added.json
    assert added.json["cities"] == [
        {"city_id": gammaton, "source": "staff", "evidence": ["added by staff"]}
    ]
    no_city = client.post(
        f"/api/v1/admin/posts/{post_id}/cities", json={"city_id": 987654}, headers=admin_headers
    )
    assert no_city.status_code == 404 and "no city with id 987654" in no_city.text
    wait_for(lambda: listed(client, alphaville) == [], what="Alphaville's list to lose it")
    wait_for(lambda: listed(client, gammaton) == [post_id], what="Gammaton's list to gain it")
    wait_for(lambda: notifier_cities(engines, post_id) == [gammaton], what="the notifier's copy")

    # The story is edited and polled again: the directory reads it anew (Betaburg now too),
    # and staff's word still holds.
    feed_server.serve("/news", feed("Delegates from Alphaville visited Betaburg's mayor."))
    poll = client.post(f"/api/v1/admin/feeds/{feed_id}/poll", headers=admin_headers)
    assert poll.status_code == 202, poll.json
    wait_for(
        lambda: (
            betaburg in [c["city_id"] for c in linked(client, admin_headers, post_id)["cities"]]
        ),
        what="the edited story's links",
    )
    links = linked(client, admin_headers, post_id)
    assert [c["city_id"] for c in links["cities"]] == sorted([betaburg, gammaton])
    assert [(c["city_id"], c["action"]) for c in links["corrections"]] == sorted(
        [(alphaville, "remove"), (gammaton, "add")]
    )
    assert listed(client, alphaville) == []
    wait_for(
        lambda: notifier_cities(engines, post_id) == sorted([betaburg, gammaton]),
        what="the notifier's copy of the edited story",
    )


def test_corrections_of_what_is_not_there_are_clear_errors(client, admin_headers, three_cities):
    assert client.get("/api/v1/admin/posts/999999/cities", headers=admin_headers).status_code == 404
    missing = client.post(
        "/api/v1/admin/posts/999999/cities", json={"city_id": 1}, headers=admin_headers
    )
    assert missing.status_code == 404
    for body in ({}, {"city_id": 0}, {"city_id": "x"}, {"city_id": 2**40}):
        answer = client.post("/api/v1/admin/posts/1/cities", json=body, headers=admin_headers)
        assert answer.status_code == 400, body


def test_the_cities_of_a_feeds_organisation_are_set_and_shown(
    client, admin_headers, three_cities, feed_server
):
    url = feed_server.serve("/org", feed("Nothing to link."))
    feed_id = client.post("/api/v1/admin/feeds", json={"url": url}, headers=admin_headers).json[
        "id"
    ]
    alphaville = three_cities[0]
    answer = client.put(
        f"/api/v1/admin/feeds/{feed_id}/cities",
        json={"city_ids": [alphaville]},
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["city_ids"] == [alphaville]
    [listed_feed] = client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"]
    assert listed_feed["city_ids"] == [alphaville]
    unknown = client.put(
        f"/api/v1/admin/feeds/{feed_id}/cities",
        json={"city_ids": [alphaville, 987654, 987653]},
        headers=admin_headers,
    )
    assert unknown.status_code == 404 and "no city with id 987653, 987654" in unknown.text
    [still] = client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"]
    assert still["city_ids"] == [alphaville]
    too_many = {"city_ids": list(range(1, 52))}
    assert (
        client.put(
            f"/api/v1/admin/feeds/{feed_id}/cities", json=too_many, headers=admin_headers
        ).status_code
        == 400
    )
