"""Lanes with real workers: a visitor's call answers while the background lane is thousands of
events behind, /readyz stays ready and says how far behind, and a batch of events delivered
twice changes each thing once."""

import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from shared.routing import BACKGROUND, lane_queue
from tests.conftest import count_rows
from tests.event_batches import BATCH, in_batches, partnership_events, send_batches
from tests.stack import duplicates_dropped, wait_for

pytestmark = pytest.mark.integration

BATCHES = 40
BACKLOG = lane_queue("notifier", BACKGROUND)
HANDLED = "SELECT count(*) FROM handled_events"


@pytest.fixture
def backlog(stack, common_settings, redis_client, clean_databases):
    """An import's worth of events (40 batches of 500) queued on the notifier's background
    lane; every event handled before the databases are emptied."""
    events = partnership_events(BATCH * BATCHES)
    send_batches(common_settings, in_batches(events))
    yield len(events)
    wait_for(
        lambda: count_rows(clean_databases["notifier"], HANDLED) == len(events),
        timeout=300,
        interval=0.5,
        what="the backlog to be handled",
    )


def test_an_interactive_call_answers_while_the_background_lane_holds_thousands_of_events(
    client, backlog, redis_client, clean_databases
):
    response = client.post(
        "/api/v1/subscriptions", json={"email": "ada@example.org", "city_ids": []}
    )
    behind = redis_client.llen(BACKLOG)
    assert response.status_code == 202, response.json
    assert behind > 0, "the backlog was gone before the call answered: the test proves nothing"
    assert count_rows(clean_databases["notifier"], HANDLED) < backlog


def test_a_confirmation_mail_goes_out_while_the_background_lane_holds_thousands_of_events(
    client, backlog, redis_client, clean_databases, mail_sink
):
    """The confirmation is background work, queued after the backlog: it is sent first because
    it waits in the lane's queue of awaited mail, which the workers take in turn with the
    backlog's queue (a single queue would send it after all forty batches)."""
    response = client.post("/api/v1/subscriptions", json={"email": "ada@example.org"})
    assert response.status_code == 202, response.json
    wait_for(lambda: mail_sink.to("ada@example.org"), timeout=120, what="the confirmation mail")
    assert redis_client.llen(BACKLOG) > 0, "the mail went out only after the backlog"


def test_readyz_stays_ready_with_a_background_backlog_and_reports_it(stack_env, backlog):
    # A gateway of its own: each process reuses a readiness answer for a second.
    response = create_app(GatewaySettings.from_env(stack_env)).test_client().get("/readyz")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ready"
    assert {entry["status"] for entry in body["services"].values()} == {"ok"}
    assert 0 < body["background"]["notifier"]["waiting"] <= BATCHES
    assert body["background"]["directory"]["waiting"] >= 0


def test_a_batch_delivered_twice_changes_each_thing_once(stack, common_settings, clean_databases):
    notifier = clean_databases["notifier"]
    duplicates_before = duplicates_dropped(stack.log("notifier"))
    events = partnership_events(BATCH)
    # The same batch twice (a redelivery), and a batch overlapping it (a relay's resend).
    send_batches(common_settings, [events, events, events[-100:] + partnership_events(50, 10_000)])
    wait_for(
        lambda: duplicates_dropped(stack.log("notifier")) - duplicates_before == BATCH + 100,
        timeout=60,
        what="the second copies to reach the notifier",
    )
    assert count_rows(notifier, HANDLED) == BATCH + 50
    assert count_rows(notifier, "SELECT count(*) FROM sister_links") == 2 * (BATCH + 50)
    assert count_rows(notifier, "SELECT count(*) FROM partnership_news") == BATCH + 50
