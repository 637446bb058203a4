"""Staff merge two records of one place, with the real gateway, workers and relay: the stories
linked to the duplicate and the subscribers following it move to the survivor (each service
hears ``directory.cities_merged`` once, however often it is delivered), the duplicate's page
redirects for good, City Search no longer finds it; the admin API refuses what cannot be
merged; the workspace's merge form takes the survivor by name."""

import json

import pytest
from sqlalchemy import select, text

from services.blog.posts import store_posts
from shared.db import make_session_factory, session_scope
from shared.events import envelope_of, utcnow
from tests.blog.test_city_links import a_post
from tests.conftest import add_test_cities
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    csrf_of,
    sign_in_with_password,
)
from tests.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def two_records(stack, clean_databases, services) -> tuple[int, int, int]:
    """Bombay and Mumbai (one place, twice) and Kuopio, Bombay's sister."""
    ids = add_test_cities(
        clean_databases["directory"],
        [
            ("Bombay", "IN", 19.07, 72.88, 100),
            ("Mumbai", "IN", 19.08, 72.88, 12_000_000),
            ("Kuopio", "FI", 62.89, 27.68, 120_000),
        ],
    )

    def indexed() -> bool:  # these ids: an index of an earlier test's cities knows Kuopio too
        found = services.call("directory.search_cities", "Kuopio")["results"]
        return bool(found) and found[0]["id"] == ids[2]

    wait_for(indexed, timeout=30, what="the directory to index the test cities")
    return ids


def json_list(value) -> list:
    return json.loads(value) if isinstance(value, str) else value


def merge(client, admin_headers, city_id: int, into: int):
    return client.post(
        f"/api/v1/admin/cities/{city_id}/merge", json={"into": into}, headers=admin_headers
    )


def test_stories_and_followers_move_to_the_survivor_once(
    client, admin_headers, two_records, clean_databases, engines, services
):
    bombay, mumbai, kuopio = two_records
    made = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": bombay, "sister_city_id": kuopio, "since": 1990},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.json
    with session_scope(make_session_factory(clean_databases["blog"])) as session:
        [post_id] = store_posts(
            session, None, [a_post("visit", "A choir visits", "<p>x</p>", "h1")], utcnow()
        )
    # A staff correction: the text names no city, so only the merge can move this link.
    linked = client.post(
        f"/api/v1/admin/posts/{post_id}/cities", json={"city_id": bombay}, headers=admin_headers
    )
    assert linked.status_code == 200, linked.json
    subscribed = client.post(
        "/api/v1/subscriptions",
        json={"email": "ada@example.org", "frequency": "weekly", "city_ids": [bombay, mumbai]},
    )
    assert subscribed.status_code == 202, subscribed.json
    assert "Bombay" in client.get(f"/cities/{bombay}").text  # cached now

    merged = merge(client, admin_headers, bombay, mumbai)
    assert merged.status_code == 200, merged.json
    assert merged.json["partnerships_moved"] == [made.json["id"]]

    def story_cities() -> list[int]:
        links = client.get(f"/api/v1/admin/posts/{post_id}/cities", headers=admin_headers).json
        return [link["city_id"] for link in links["cities"]]

    wait_for(lambda: story_cities() == [mumbai], timeout=30, what="the story's link to move")
    assert [p["id"] for p in client.get(f"/api/v1/posts?city_id={mumbai}").json["results"]] == [
        post_id
    ]

    def followed() -> list[int]:
        with engines["notifier"].connect() as conn:
            row = conn.execute(
                text("SELECT city_ids FROM subscribers WHERE email = 'ada@example.org'")
            ).scalar()
        return json_list(row)

    wait_for(lambda: followed() == [mumbai], timeout=30, what="the follower to follow Mumbai")

    # Delivered again (a relay that died before marking it sent): each service skips it.
    # Read through the table's types: plain SQL gives text for dates and JSON on SQLite.
    from services.directory.models import outbox_events

    with engines["directory"].connect() as conn:
        row = (
            conn.execute(
                select(outbox_events).where(outbox_events.c.event_type == "directory.cities_merged")
            )
            .mappings()
            .one()
        )
    envelope = envelope_of(row, "directory")
    for service in ("blog", "notifier"):
        again = services.call(f"{service}.handle_events", [envelope])
        assert again == {"handled": 0, "duplicate": 1, "ignored": 0}

    # The old page leads to the survivor's for good; the API answers with the survivor.
    page = client.get(f"/cities/{bombay}?sort=year")
    assert page.status_code == 301
    assert page.headers["Location"].endswith(f"/cities/{mumbai}?sort=year")
    # Its Atom feed reads the city from the gateway's cache: each gateway process learns of
    # the merge from the generation it reads a few times a second, and the relay moves it
    # just after the services have the event (a moment after the follower moved, here).
    wait_for(
        lambda: client.get(f"/cities/{bombay}/feed.xml").status_code == 301,
        timeout=10,
        what="the old city's feed to lead to the survivor's",
    )
    answer = client.get(f"/api/v1/cities/{bombay}").json
    assert (answer["id"], answer["merged_into"]) == (mumbai, mumbai)
    assert "merged_into" not in client.get(f"/api/v1/cities/{mumbai}").json
    wait_for(
        lambda: (
            [r["id"] for r in client.get("/api/v1/cities?q=Bombay").json["results"]][:1] == [mumbai]
        ),
        timeout=30,
        what="City Search to find Mumbai by its old name",
    )
    assert bombay not in [r["id"] for r in client.get("/api/v1/cities?q=Bombay").json["results"]]
    history = client.get(f"/api/v1/admin/audit?kind=city&id={mumbai}", headers=admin_headers)
    assert "city.merged" in [entry["action"] for entry in history.json["results"]]


def test_the_api_refuses_what_cannot_be_merged(client, admin_headers, two_records):
    bombay, mumbai, kuopio = two_records
    assert (
        client.post(f"/api/v1/admin/cities/{bombay}/merge", json={"into": mumbai}).status_code
        == 401
    )
    assert merge(client, admin_headers, bombay, bombay).status_code == 400
    assert merge(client, admin_headers, 999_999, mumbai).status_code == 404
    assert merge(client, admin_headers, bombay, 999_999).status_code == 404
    bad = client.post(
        f"/api/v1/admin/cities/{bombay}/merge", json={"into": "Mumbai"}, headers=admin_headers
    )
    assert bad.status_code == 400
    assert merge(client, admin_headers, bombay, mumbai).status_code == 200
    into_merged = merge(client, admin_headers, kuopio, bombay)
    assert into_merged.status_code == 409 and "merged into" in into_merged.json["error"]["message"]
    assert merge(client, admin_headers, bombay, kuopio).status_code == 409
    edit = client.put(
        f"/api/v1/admin/cities/{bombay}", json={"population": 1}, headers=admin_headers
    )
    assert edit.status_code == 409


def test_an_editor_merges_on_the_workspace_page_naming_the_survivor(
    gateway_app, clean_databases, two_records
):
    bombay, mumbai, _kuopio = two_records
    add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    staff = sign_in_with_password(gateway_app, "eve@example.org")
    page = staff.get(f"/staff/cities/{bombay}")
    assert "Merge into another record of the same place" in page.text
    form = {"into": "Mumbai", "into_id": "", "csrf_token": csrf_of(page)}
    assert staff.post(f"/staff/cities/{bombay}/merge", data={"into": "Mumbai"}).status_code == 400
    nobody = staff.post(f"/staff/cities/{bombay}/merge", data={**form, "into": "Atlantis"})
    assert nobody.status_code == 400 and "No city is called that." in nobody.text
    itself = staff.post(f"/staff/cities/{bombay}/merge", data={**form, "into_id": str(bombay)})
    assert itself.status_code == 400 and "cannot be merged into itself" in itself.text
    done = staff.post(f"/staff/cities/{bombay}/merge", data=form)  # the name, without JS
    assert done.status_code == 303, done.text
    assert done.headers["Location"].endswith(f"/staff/cities/{mumbai}?merged={bombay}")
    survivor = staff.get(done.headers["Location"]).text
    assert f"City {bombay} was merged into this one" in survivor
    assert "city.merged" in survivor and "Eve Editor" in survivor
    tombstone = staff.get(f"/staff/cities/{bombay}").text
    assert "This record was merged into" in tombstone and 'name="name"' not in tombstone
