"""WebSub end to end: a local hub (tests/websub_hub.py) talks to the gateway served over HTTP,
with the real blog, directory and notifier workers and the relay behind it. A feed that names
the hub is subscribed to; a story published at the hub (and nowhere else) is stored and
announced; forged, unsigned, replayed and oversized deliveries change nothing; a hub that is
down leaves polling in charge; removing the feed unsubscribes it."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
import requests
from sqlalchemy import select, update

from services.blog.models import Feed, HubSubscription
from shared.events import utcnow
from tests.conftest import count_rows
from tests.feed_server import FeedServer
from tests.stack import Stack, free_port, wait_for
from tests.websub_hub import Hub, deliver, sign

pytestmark = pytest.mark.integration

ITEM = """<item><title>{title}</title><link>https://news.example.org/{slug}</link>
  <guid isPermaLink="false">{slug}</guid><pubDate>{date}</pubDate>
  <description><![CDATA[<p>{title}: delegates met for a week.</p>]]></description></item>"""


def feed_xml(hub_url: str, topic: str, *titles: str) -> bytes:
    date = format_datetime(utcnow(), usegmt=True)
    items = "".join(
        ITEM.format(title=title, slug=title.lower().replace(" ", "-"), date=date)
        for title in titles
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<title>Twinning News</title><link>https://news.example.org/</link>
<atom:link href="{hub_url}" rel="hub"/>
<atom:link href="{topic}" rel="self" type="application/rss+xml"/>
{items}</channel></rss>""".encode()


@pytest.fixture(scope="session")
def websub_gateway(stack, stack_env, tmp_path_factory) -> str:
    """The gateway over HTTP at WEBSUB_BASE_URL, where the blog tells hubs to call."""
    base = stack_env["WEBSUB_BASE_URL"]
    port = base.rsplit(":", 1)[1]
    env = {**stack_env, "PORT": port, "GATEWAY_PROCESSES": "1", "GATEWAY_THREADS": "8"}
    server = Stack(env, tmp_path_factory.mktemp("websub-gateway-logs"))
    server.start("gateway", "gateway")

    def answers() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_for(answers, timeout=30, what="the gateway to serve")
        yield base
    finally:
        server.stop_all()


@pytest.fixture
def hub():
    with Hub() as running:
        yield running


@pytest.fixture
def feed_server():
    with FeedServer() as server:
        yield server


def titles(client) -> list[str]:
    return sorted(post["title"] for post in client.get("/api/v1/posts").json["results"])


# Read and written through the blog's table definitions: their types turn SQLite's text
# back into datetimes, as the blog itself sees them.
SUBSCRIPTIONS, FEEDS = HubSubscription.__table__, Feed.__table__


def subscription(engines) -> dict | None:
    with engines["blog"].connect() as conn:
        row = conn.execute(select(SUBSCRIPTIONS).order_by(SUBSCRIPTIONS.c.id.desc())).first()
    return None if row is None else dict(row._mapping)


def feed_row(engines) -> dict:
    with engines["blog"].connect() as conn:
        return dict(conn.execute(select(FEEDS)).one()._mapping)


def announced(engines) -> int:
    return count_rows(
        engines["notifier"],
        "SELECT count(*) FROM handled_events WHERE event_type = 'blog.post_published'",
    )


def subscribed_feed(client, admin_headers, engines, feed_server, hub, *stories) -> dict:
    """A feed that names ``hub``, registered, polled once and verified at the hub."""
    topic = feed_server.url("/feed/news")
    feed_server.serve("/feed/news", feed_xml(hub.url, topic, *stories), etag='"1"')
    response = client.post("/api/v1/admin/feeds", json={"url": topic}, headers=admin_headers)
    assert response.status_code == 201, response.json
    wait_for(lambda: titles(client) == sorted(stories), what="the first poll's stories")
    wait_for(lambda: hub.subscribers(topic), what="the hub to verify the subscription")
    wait_for(lambda: (subscription(engines) or {}).get("state") == "active",
             what="the blog to record the verified subscription")  # fmt: skip
    (sub,) = hub.subscribers(topic)
    return {"id": response.json["id"], "topic": topic, "callback": sub.callback}


def test_a_story_published_at_the_hub_is_stored_and_announced_without_a_poll(
    client, stack, websub_gateway, admin_headers, clean_databases, feed_server, hub
):
    feed = subscribed_feed(
        client, admin_headers, clean_databases, feed_server, hub, "Delegates arrive"
    )
    (request,) = hub.requests
    assert request["hub.mode"] == "subscribe" and request["hub.topic"] == feed["topic"]
    assert request["hub.callback"].startswith(websub_gateway + "/websub/")
    assert len(request["hub.secret"]) >= 32 and int(request["hub.lease_seconds"]) > 0
    (check,) = hub.checks
    assert (check.status, check.echoed) == (200, True)
    row = subscription(clean_databases)
    assert row["lease_seconds"] == hub.lease_seconds  # the lease the hub granted, recorded
    assert row["expires_at"] > utcnow() + timedelta(seconds=hub.lease_seconds - 120)

    # While the hub pushes, polling relaxes to WEBSUB_POLL_INTERVAL (6 hours): a feed that
    # posted just now would otherwise be polled again in 15 minutes.
    client.post(f"/api/v1/admin/feeds/{feed['id']}/poll", headers=admin_headers)
    wait_for(lambda: feed_server.not_modified["/feed/news"] == 1, what="a second poll")
    wait_for(lambda: feed_row(clean_databases)["claimed_until"] is None
             and feed_row(clean_databases)["status"] == "not_modified",
             what="the poll to be recorded")  # fmt: skip
    assert feed_row(clean_databases)["next_check_at"] > utcnow() + timedelta(hours=5)

    wait_for(lambda: announced(clean_databases) == 1, what="the first story's announcement")
    hits = feed_server.hits["/feed/news"]
    pushed = feed_xml(hub.url, feed["topic"], "Mayors sign the pact", "Delegates arrive")
    assert hub.publish(feed["topic"], pushed) == [202]
    wait_for(lambda: titles(client) == ["Delegates arrive", "Mayors sign the pact"],
             what="the pushed story on the API")  # fmt: skip
    wait_for(lambda: announced(clean_databases) == 2, what="the pushed story's announcement")
    assert feed_server.hits["/feed/news"] == hits  # no poll found it


def test_forged_unsigned_replayed_and_oversized_deliveries_change_nothing(
    client, stack, websub_gateway, admin_headers, clean_databases, feed_server, hub
):
    feed = subscribed_feed(client, admin_headers, clean_databases, feed_server, hub, "First")
    callback, topic = feed["callback"], feed["topic"]
    (sub,) = hub.subscribers(topic)
    forged = feed_xml(hub.url, topic, "Forged")
    assert deliver(callback, forged, None) == 403
    assert deliver(callback, forged, sign("not-the-secret", forged)) == 403
    assert deliver(callback, forged, sign(sub.secret, b"another body")) == 403
    assert deliver(callback, forged, "md5=" + sign(sub.secret, forged).split("=")[1]) == 403
    assert deliver(callback[:-1] + ("A" if callback[-1] != "A" else "B"), forged,
                   sign(sub.secret, forged)) == 404  # fmt: skip
    assert deliver(websub_gateway + "/websub/short", forged, sign(sub.secret, forged)) == 404

    too_big = b" " * (1024 * 1024 + 1)
    assert deliver(callback, too_big, sign(sub.secret, too_big)) == 413
    signed = {"X-Hub-Signature": sign(sub.secret, too_big)}
    halves = iter([too_big[:600_000], too_big[600_000:]])  # no Content-Length: chunked
    chunked = requests.post(callback, data=halves, headers=signed, timeout=10)
    assert chunked.status_code == 413

    genuine = feed_xml(hub.url, topic, "Genuine")
    for method in ("sha256", "sha1", "sha512"):  # the same delivery, replayed
        assert deliver(callback, genuine, sign(sub.secret, genuine, method)) == 202
    wait_for(lambda: "Genuine" in titles(client), what="the genuine delivery's story")
    last = feed_xml(hub.url, topic, "Last")
    assert deliver(callback, last, sign(sub.secret, last, "sha384")) == 202
    wait_for(lambda: "Last" in titles(client), what="a delivery sent after the replays")
    assert titles(client) == ["First", "Genuine", "Last"]
    wait_for(lambda: announced(clean_databases) == 3, what="three announcements")
    assert count_rows(clean_databases["blog"], "SELECT count(*) FROM outbox_events") == 3


def test_the_callback_confirms_only_the_intent_it_asked_for(
    client, stack, websub_gateway, admin_headers, clean_databases, feed_server, hub
):
    feed = subscribed_feed(client, admin_headers, clean_databases, feed_server, hub, "First")
    callback, topic = feed["callback"], feed["topic"]
    check = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "c-123",
             "hub.lease_seconds": "600"}  # fmt: skip
    answer = requests.get(callback, params=check, timeout=5)
    assert (answer.status_code, answer.text) == (200, "c-123")
    for wrong in ({"hub.topic": topic + "?other"}, {"hub.mode": "unsubscribe"},
                  {"hub.challenge": ""}, {"hub.mode": "nonsense"}):  # fmt: skip
        answer = requests.get(callback, params={**check, **wrong}, timeout=5)
        assert answer.status_code == 404 and "c-123" not in answer.text, wrong
    stranger = websub_gateway + "/websub/" + "x" * 43
    assert requests.get(stranger, params=check, timeout=5).status_code == 404


def test_a_hub_that_is_down_leaves_polling_in_charge(
    client, stack, websub_gateway, admin_headers, clean_databases, feed_server
):
    # A hub nobody answers at: the subscription fails, polling carries on at its own rhythm.
    topic = feed_server.url("/feed/news")
    dead_hub = f"http://127.0.0.1:{free_port()}/"
    feed_server.serve("/feed/news", feed_xml(dead_hub, topic, "First"))
    feed_id = client.post("/api/v1/admin/feeds", json={"url": topic}, headers=admin_headers).json[
        "id"
    ]
    wait_for(lambda: (subscription(clean_databases) or {}).get("state") == "failed",
             what="the subscription to fail")  # fmt: skip
    assert "could not connect" in subscription(clean_databases)["last_error"]
    feed_server.serve("/feed/news", feed_xml(dead_hub, topic, "Second", "First"))
    client.post(f"/api/v1/admin/feeds/{feed_id}/poll", headers=admin_headers)
    wait_for(lambda: titles(client) == ["First", "Second"], what="the poll's new story")
    wait_for(lambda: feed_row(clean_databases)["claimed_until"] is None, what="the poll's end")
    assert feed_row(clean_databases)["next_check_at"] < utcnow() + timedelta(minutes=20)


def test_a_lease_that_ends_without_renewal_puts_polling_back_in_charge(
    client, stack, services, websub_gateway, admin_headers, clean_databases, feed_server, hub
):
    subscribed_feed(client, admin_headers, clean_databases, feed_server, hub, "First")
    # Renewal: due, the hub is asked again and grants a new lease.
    before = subscription(clean_databases)
    with clean_databases["blog"].begin() as conn:
        conn.execute(update(SUBSCRIPTIONS).values(next_attempt_at=utcnow()))
    assert services.call("blog.tend_subscriptions") == {"requested": 1}
    wait_for(lambda: len(hub.checks) == 2 and subscription(clean_databases)["expires_at"]
             > before["expires_at"], what="the renewal to be verified")  # fmt: skip
    assert [request["hub.mode"] for request in hub.requests] == ["subscribe", "subscribe"]
    assert subscription(clean_databases)["callback_token"] == before["callback_token"]

    # The hub goes away and the lease runs out: polling takes over at once.
    hub.stop()
    with clean_databases["blog"].begin() as conn:
        ended = utcnow() - timedelta(seconds=1)
        conn.execute(update(SUBSCRIPTIONS).values(next_attempt_at=ended, expires_at=ended))
        conn.execute(update(FEEDS).values(next_check_at=utcnow() + timedelta(hours=6)))
    services.call("blog.tend_subscriptions")
    assert subscription(clean_databases)["state"] == "failed"
    assert feed_row(clean_databases)["next_check_at"] <= utcnow()


def test_removing_the_feed_unsubscribes_at_the_hub(
    client, stack, websub_gateway, admin_headers, clean_databases, feed_server, hub
):
    feed = subscribed_feed(client, admin_headers, clean_databases, feed_server, hub, "First")
    response = client.delete(f"/api/v1/admin/feeds/{feed['id']}?stories=keep",
                             headers=admin_headers)  # fmt: skip
    assert response.status_code == 200
    wait_for(lambda: not hub.subscribers(feed["topic"]), what="the hub to drop the subscription")
    assert hub.requests[-1]["hub.mode"] == "unsubscribe"
    assert hub.checks[-1].mode == "unsubscribe" and hub.checks[-1].echoed
    wait_for(lambda: subscription(clean_databases) is None, what="the subscription's row to go")
    late = feed_xml(hub.url, feed["topic"], "Late")
    assert deliver(feed["callback"], late, sign("anything", late)) == 404
    assert titles(client) == ["First"]
