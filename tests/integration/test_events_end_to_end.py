"""One real event end to end: a partnership changed through the gateway reaches the notifier
through the outbox and the relay, exactly once, even when the relay dies."""

import time

import pytest
from sqlalchemy import text

from shared.celery_app import make_celery
from shared.relay import OutboxRelay
from tests.conftest import add_test_cities, count_rows
from tests.stack import duplicates_dropped, wait_for

pytestmark = pytest.mark.integration


def add_cities(engine, count: int) -> list[int]:
    return add_test_cities(engine, [(f"Testville {n}", "ZZ", 0.0, 0.0, 0) for n in range(count)])


def notifier_links(engines, partnership_id: int) -> list[tuple]:
    with engines["notifier"].connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT city_id, sister_city_id, status FROM sister_links"
                    " WHERE partnership_id = :id ORDER BY city_id"
                ),
                {"id": partnership_id},
            )
        ]


def test_partnership_changes_reach_the_notifier(client, stack, admin_headers, clean_databases):
    minneapolis, najaf = add_cities(clean_databases["directory"], 2)
    response = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": najaf, "sister_city_id": minneapolis, "since": 2013},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.json
    partnership = response.json
    assert partnership["city_ids"] == [minneapolis, najaf]
    assert partnership["since"] == 2013

    expected = [(minneapolis, najaf, "active"), (najaf, minneapolis, "active")]
    wait_for(
        lambda: notifier_links(clean_databases, partnership["id"]) == expected,
        what="the notifier to learn the new partnership",
    )

    response = client.patch(
        f"/api/v1/admin/partnerships/{partnership['id']}",
        json={"status": "inactive"},
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert response.json["status"] == "inactive"
    wait_for(
        lambda: (
            [link[2] for link in notifier_links(clean_databases, partnership["id"])]
            == ["inactive", "inactive"]
        ),
        what="the notifier to learn the status change",
    )

    response = client.delete(
        f"/api/v1/admin/partnerships/{partnership['id']}", headers=admin_headers
    )
    assert response.status_code == 200
    wait_for(
        lambda: notifier_links(clean_databases, partnership["id"]) == [],
        what="the notifier to forget the partnership",
    )
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM handled_events") == 3


def test_a_duplicate_partnership_is_a_conflict_and_announces_nothing(
    client, stack, admin_headers, clean_databases
):
    a, b = add_cities(clean_databases["directory"], 2)
    body = {"city_id": a, "sister_city_id": b}
    assert (
        client.post("/api/v1/admin/partnerships", json=body, headers=admin_headers).status_code
        == 201
    )
    again = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": b, "sister_city_id": a},
        headers=admin_headers,
    )
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"
    assert count_rows(clean_databases["directory"], "SELECT count(*) FROM outbox_events") == 1


def test_unknown_cities_and_self_partnership_are_clear_errors(
    client, stack, admin_headers, clean_databases
):
    [a] = add_cities(clean_databases["directory"], 1)
    missing = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": a, "sister_city_id": a + 1000},
        headers=admin_headers,
    )
    assert missing.status_code == 404
    assert missing.json["error"]["message"] == f"no city with id {a + 1000}"
    itself = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": a, "sister_city_id": a},
        headers=admin_headers,
    )
    assert itself.status_code == 400
    assert "own sister" in itself.json["error"]["message"]
    gone = client.delete("/api/v1/admin/partnerships/999999", headers=admin_headers)
    assert gone.status_code == 404


def _create_partnerships(client, headers, city_ids) -> list[int]:
    ids = []
    for left, right in zip(city_ids[::2], city_ids[1::2], strict=True):
        response = client.post(
            "/api/v1/admin/partnerships",
            json={"city_id": left, "sister_city_id": right},
            headers=headers,
        )
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])
    return ids


def test_events_committed_while_the_relay_is_dead_are_delivered_once_it_is_back(
    client, stack, admin_headers, clean_databases
):
    stack.kill("relay")
    try:
        cities = add_cities(clean_databases["directory"], 80)
        _create_partnerships(client, admin_headers, cities)
        unsent = "SELECT count(*) FROM outbox_events WHERE sent_at IS NULL"
        assert count_rows(clean_databases["directory"], unsent) == 40
        time.sleep(0.3)
        assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 0

        # Kill the relay again and again at different points of its work, then let it run.
        for delay in (0.2, 0.5, 0.9, 1.4):
            stack.start("relay", "relay")
            time.sleep(delay)
            stack.kill("relay")
    finally:
        stack.start("relay", "relay")

    handled = "SELECT count(*) FROM handled_events"
    wait_for(
        lambda: count_rows(clean_databases["notifier"], handled) == 40,
        timeout=30,
        what="all 40 events to be handled",
    )
    assert count_rows(clean_databases["directory"], unsent) == 0
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 80
    time.sleep(0.5)
    assert count_rows(clean_databases["notifier"], handled) == 40


def test_events_sent_but_not_marked_are_sent_again_and_handled_once(
    client, stack, admin_headers, clean_databases, common_settings, redis_client
):
    """The one window a relay crash can hit: the events reached the queue, but the relay died
    before recording that. They are sent again; the notifier drops the second copies."""
    stack.stop("relay")
    duplicates_before = duplicates_dropped(stack.log("notifier"))
    try:
        cities = add_cities(clean_databases["directory"], 10)
        _create_partnerships(client, admin_headers, cities)
        relay = OutboxRelay(
            make_celery("relay-under-test", common_settings),
            {"directory": clean_databases["directory"]},
            redis_client,
        )
        assert relay.relay_once() == 5
        handled = "SELECT count(*) FROM handled_events"
        wait_for(
            lambda: count_rows(clean_databases["notifier"], handled) == 5,
            what="the first copies to be handled",
        )
        # The crash: the marks are lost, as if the relay died before committing them.
        with clean_databases["directory"].begin() as conn:
            conn.execute(text("UPDATE outbox_events SET sent_at = NULL"))
    finally:
        stack.start("relay", "relay")
    unsent = "SELECT count(*) FROM outbox_events WHERE sent_at IS NULL"
    wait_for(
        lambda: count_rows(clean_databases["directory"], unsent) == 0,
        what="the relay to send the events again",
    )
    wait_for(
        lambda: duplicates_dropped(stack.log("notifier")) - duplicates_before == 5,
        timeout=10,
        what="the notifier to receive the second copies",
    )
    assert count_rows(clean_databases["notifier"], handled) == 5
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 10
