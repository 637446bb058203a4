"""The work the fault tests interrupt, and how they count what was kept: digests for a crowd of
subscribers (counted at the SMTP sink), a polling cycle over many feeds (posts stored, linked
and announced), a partnership import."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from email.utils import format_datetime

from sqlalchemy import Engine, insert, text

from services.blog.models import Feed
from services.notifier.models import Story, Subscriber
from shared.events import utcnow
from tests.conftest import add_test_cities
from tests.feed_server import FeedServer
from tests.stack import wait_for

# --- digests -------------------------------------------------------------------------------


def add_digest_readers(engine: Engine, count: int, prefix: str = "reader") -> set[str]:
    """``count`` confirmed weekly subscribers following nothing, and one story for all of them
    to be told about. Returns their addresses."""
    confirmed = utcnow() - timedelta(days=1)
    addresses = [f"{prefix}{n}@example.org" for n in range(count)]
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), [
            {"email": address, "frequency": "weekly", "weekday": 0, "city_ids": [],
             "status": "confirmed", "created_at": confirmed, "confirmed_at": confirmed,
             "soft_failures": 0}
            for address in addresses
        ])  # fmt: skip
        conn.execute(insert(Story).values(
            post_id=1, title="Minneapolis and Najaf renew their ties", excerpt="Delegates…",
            url="https://medium.com/p/0123456789ab", image=None, published_at=utcnow(),
            received_at=utcnow() - timedelta(hours=1), city_ids=[],
        ))  # fmt: skip
    return set(addresses)


def start_digest_send(faults, count: int, prefix: str = "reader") -> set[str]:
    """``count`` subscribers, and staff's "send now" for them; returns their addresses."""
    addresses = add_digest_readers(faults.engines["notifier"], count, prefix)
    response = faults.post("/api/v1/admin/digests/send", json={"frequency": "weekly"})
    assert response.status_code == 202, response.text
    return addresses


def start_campaign_send(faults, count: int, city_id: int = 10) -> set[str]:
    """``count`` followers of one city and a quarter as many of another, and an admin's
    campaign to the first city's followers, sent now; returns the followers' addresses."""
    confirmed = utcnow() - timedelta(days=1)
    followers = {f"follower{n}@example.org" for n in range(count)}
    others = {f"other{n}@example.org" for n in range(count // 4)}
    with faults.engines["notifier"].begin() as conn:
        conn.execute(insert(Subscriber), [
            {"email": address, "frequency": "weekly", "weekday": 0,
             "city_ids": [city_id] if address in followers else [city_id + 1],
             "status": "confirmed", "created_at": confirmed, "confirmed_at": confirmed,
             "soft_failures": 0}
            for address in sorted(followers | others)
        ])  # fmt: skip
    created = faults.post("/api/v1/admin/campaigns", json={
        "subject": "Take action", "body": "Write to your **mayor**.",
        "audience": {"city_ids": [city_id]}})  # fmt: skip
    assert created.status_code == 201, created.text
    sent = faults.post(f"/api/v1/admin/campaigns/{created.json()['id']}/send", json={})
    assert sent.status_code == 202, sent.text
    return followers


def wait_until_under_way(done, total: int, what: str) -> None:
    """Until a fifth of the work is done: the moment to strike."""
    wait_for(lambda: done() >= total // 5, timeout=120, interval=0.02,
             what=f"{what} to be under way")  # fmt: skip


def mail_count(faults) -> int:
    return len(faults.mail.received)


def settle(count, quiet: float = 5.0, timeout: float = 180.0, until=None):
    """Wait until ``count()`` has not moved for ``quiet`` seconds (whatever was still running
    has finished), or has reached ``until``; return it."""
    last, since = count(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - since < quiet and (until is None or last < until):
        assert time.monotonic() < deadline, "the count never settled"
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last


def digests_sent(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM deliveries WHERE status = 'sent'")
        ).scalar_one()


def sent_not_accepted(engine: Engine) -> set[str]:
    """Addresses whose row says sent while the server's 250 was never recorded: the one
    window the docs name, where a kill can lose a message (never send it twice)."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
                    " WHERE d.status = 'sent' AND d.accepted_at IS NULL"
                )
            ).scalars()
        )


def assert_each_digest_once(faults, addresses: set[str]) -> None:
    """No recipient and no Message-ID twice at the server; every subscriber served, but for
    rows the ledger names as sent and never acknowledged (at most one per connection a killed
    worker held: 2 threads). Checked once no batch is running: a row is marked sent just
    before its message's last line, and the server's 250 recorded after it."""
    engine = faults.engines["notifier"]
    # Copies of a redelivered batch may still be finishing: checked once neither the server
    # nor the ledger (the 250s a batch heard are recorded after its messages) has moved for a
    # while. A late copy finds no row left to send.
    settle(lambda: (mail_count(faults), len(sent_not_accepted(engine))), quiet=3.0)
    uncertain = sent_not_accepted(engine)
    recipients = [address for item in faults.mail.received for address in item.recipients]
    message_ids = [item.message["Message-ID"] for item in faults.mail.received]
    twice = [address for address, times in Counter(recipients).items() if times > 1]
    assert twice == [], f"{len(twice)} subscribers got their digest twice: {twice[:5]}"
    assert len(set(message_ids)) == len(message_ids), "a Message-ID reached the server twice"
    missing = addresses - set(recipients)
    assert missing <= uncertain and len(uncertain) <= 2, (missing, uncertain)
    assert set(recipients) <= addresses


# --- feeds ---------------------------------------------------------------------------------

ITEMS_PER_FEED = 5
# Places the stories name, made in the directory by each test that links stories to cities.
TEST_CITIES = [
    ("Ruritania Falls", "US", 40.0, -100.0, 50_000),
    ("Zenda Springs", "CZ", 50.0, 15.0, 20_000),
    ("Graustark City", "RO", 45.0, 25.0, 30_000),
]


def add_known_cities(faults) -> dict[str, int]:
    """TEST_CITIES in the directory, once its workers' search index knows them: {name: id}."""
    ids = add_test_cities(faults.engines["directory"], TEST_CITIES)
    wait_for(lambda: faults.services.call("directory.search_cities", "Graustark City")["results"],
             what="the directory to know the test cities")  # fmt: skip
    return {name: city_id for (name, *_), city_id in zip(TEST_CITIES, ids, strict=True)}


def feed_body(feed: int, cities: list[str], items: int = ITEMS_PER_FEED) -> str:
    """A Medium-like RSS feed whose every story names one of ``cities`` in its title."""
    published = utcnow() - timedelta(days=1)
    entries = "".join(
        f"""<item><title><![CDATA[{cities[(feed + n) % len(cities)]} welcomes delegates, story {n}
        of writer {feed}]]></title>
        <link>https://medium.com/@writer{feed}/story-{feed}-{n}-a1b2c3{feed:04x}{n:02x}</link>
        <guid isPermaLink="false">https://medium.com/p/a1b2c3{feed:04x}{n:02x}</guid>
        <dc:creator><![CDATA[Writer {feed}]]></dc:creator>
        <pubDate>{format_datetime(published - timedelta(hours=n), usegmt=True)}</pubDate>
        <content:encoded><![CDATA[<p>Volunteers from {cities[(feed + n) % len(cities)]}
        met their partners. The exchange of students goes on.</p>]]></content:encoded></item>"""
        for n in range(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Stories by Writer {feed}</title><link>https://medium.com/@writer{feed}</link>"
        f"{entries}</channel></rss>"
    )


def serve_feeds(server: FeedServer, count: int, cities: list[str]) -> list[str]:
    """``count`` feeds on the server, each with an ETag (a second poll is answered 304)."""
    return [
        server.serve(f"/feed/{feed}", feed_body(feed, cities), etag=f'"{feed}"')
        for feed in range(count)
    ]


def register_feeds(engine: Engine, urls: list[str]) -> None:
    """Feeds registered and due now: the next ``blog.schedule_fetches`` hands them all out
    (a polling cycle), as staff's registrations would be."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(Feed), [
            {"url": url, "status": "pending", "error_count": 0, "created_at": now,
             "next_check_at": now, "interval_seconds": 3600}
            for url in urls
        ])  # fmt: skip


def start_polling_cycle(faults, server: FeedServer, feeds: int) -> int:
    """``feeds`` feeds served, registered, and handed out as beat's ``blog.schedule_fetches``
    hands them out; returns how many posts the cycle brings."""
    urls = serve_feeds(server, feeds, [name for name, *_ in TEST_CITIES])
    register_feeds(faults.engines["blog"], urls)
    faults.run_periodic("blog.schedule_fetches")
    return feeds * ITEMS_PER_FEED


def announcements_by_post(engine: Engine, event_type: str = "blog.post_published") -> Counter:
    """How many times the blog announced each post (its outbox, which the relay delivers)."""
    with engine.connect() as conn:
        payloads = conn.execute(
            text("SELECT payload FROM outbox_events WHERE event_type = :t"), {"t": event_type}
        ).scalars()
        return Counter(payload["id"] for payload in payloads)


def assert_each_post_announced_once(faults, total: int, redrive: bool = True) -> None:
    """All ``total`` posts stored, linked to their cities and announced once each.

    ``redrive``: first send beat's ``blog.link_pending_posts`` (every 5 minutes), which asks
    the directory again about posts stored with no link request out (a worker killed, or
    Redis away, between storing them and asking)."""
    if redrive:
        faults.run_periodic("blog.link_pending_posts")
    engine = faults.engines["blog"]
    try:
        wait_for(lambda: faults.count("blog", ANNOUNCED) >= total, timeout=120,
                 what="every post to be linked and announced")  # fmt: skip
    except AssertionError as error:
        with engine.connect() as conn:
            states = conn.execute(text(
                "SELECT linked_hash IS NOT NULL AS linked, link_requested_at IS NOT NULL AS asked,"
                " count(*) FROM posts GROUP BY 1, 2"
            )).all()  # fmt: skip
        held = {key: faults.redis.hlen(key) for key in ("unacked",)}
        held["unacked_mutex ttl"] = faults.redis.ttl("unacked_mutex")
        raise AssertionError(
            f"{error}; posts (linked, asked, count): {states}; Redis: {held}"
        ) from None
    assert faults.count("blog", POSTS) == total
    announced = announcements_by_post(engine)
    assert len(announced) == total and set(announced.values()) == {1}


POSTS = "SELECT count(*) FROM posts"
ANNOUNCED = "SELECT count(*) FROM outbox_events WHERE event_type = 'blog.post_published'"
UNLINKED = "SELECT count(*) FROM posts WHERE linked_hash IS NULL"
