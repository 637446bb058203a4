"""Campaigns through the digest ledger, against a real SMTP server: exactly the audience,
once each however often the hand-out and its batches run, with one-click unsubscribe and no
tracking pixel; a Markdown body's hostile HTML never reaches a mail; a test copy is not on
the ledger; a campaign's rows never count as digests."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select, text

from services.notifier import (
    campaign_bodies,
    campaigns,
    digests,
    emails,
    ledger,
    mail_rate,
    sending,
    subscriber_admin,
)
from services.notifier.event_handlers import on_partnerships_changed, remember_cities
from services.notifier.models import Campaign, Delivery, Subscriber
from services.notifier.senders import SmtpSender
from shared.db import session_scope
from shared.errors import Conflict, InvalidInput
from shared.events import utcnow
from tests.notifier.test_sending import DOMAIN, add_subscriber, partnership

HOSTILE = """# Act now

<script>alert('x')</script> <img src="https://tracker.example/p.gif" onerror="alert(1)">

[Sign the letter](https://letters.example/sign?x=1&y=2) and [this](javascript:alert(1)).

![pixel](https://tracker.example/pixel.gif)
"""


def new_campaign(sessions, audience=None, body="Write to your **mayor**.", subject="Act"):
    with session_scope(sessions) as session:
        return campaigns.create(session, subject, body, audience, utcnow()).id


def send_all(sessions, settings, sink, campaign_id, batch=2) -> list[sending.BatchOutcome]:
    """The hand-out and its batches, as the tasks run them (without the queue between)."""
    now = utcnow()
    with session_scope(sessions) as session:
        campaigns.schedule(session, campaign_id, None, now)
    with session_scope(sessions) as session:
        campaign = campaigns.start(session, campaign_id, now)
        audience = campaigns.audience_of(session, campaign.audience)
    batches: list[list[int]] = []
    ledger.hand_out_campaign(sessions, campaign_id, audience, now, batch=batch, domain=DOMAIN,
                             send=batches.append)  # fmt: skip
    with session_scope(sessions) as session:
        campaigns.handed_out(session, campaign_id, now)
    outcomes = []
    for ids in batches:
        with SmtpSender(sink.url) as sender:
            outcomes.append(sending.send_campaign_batch(
                sessions.kw["bind"], sender, campaign_id, ids, settings, utcnow()))  # fmt: skip
        with session_scope(sessions) as session:
            campaigns.finish_if_done(session, campaign_id, utcnow())
    return outcomes


def test_a_campaign_to_a_citys_followers_reaches_them_once_each(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        for n in range(5):
            add_subscriber(session, f"lyon{n}@example.org", [10, 99])
        add_subscriber(session, "kyoto@example.org", [20])
        add_subscriber(session, "everything@example.org")  # follows nothing: all the news
        pending = add_subscriber(session, "pending@example.org", [10])
        session.get(Subscriber, pending).status = "pending"
    campaign_id = new_campaign(notifier_sessions, {"city_ids": [10]})

    send_all(notifier_sessions, mail_settings, sink, campaign_id)
    # Handed out again (a redelivered hand-out, the beat's second look): nothing more.
    again = send_all_again(notifier_sessions, mail_settings, sink, campaign_id)

    assert sorted(r.recipients[0] for r in sink.received) == [
        f"lyon{n}@example.org" for n in range(5)
    ]
    assert again == 0
    with notifier_sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.status == "sent" and campaign.sent_at is not None
        assert campaigns.delivery_counts(session, campaign_id) == {"sent": 5}
    message = sink.to("lyon0@example.org")[0].message
    assert message["Subject"] == "Act"
    assert message["Message-ID"].startswith(f"<campaign.{campaign_id}.")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://sister.example/unsubscribe/")
    assert "announcements" in message["List-Id"]
    html = message.get_body(("html",)).get_content()
    assert "Write to your <strong>mayor</strong>." in html and "<img" not in html
    assert "Write to your mayor." in message.get_body(("plain",)).get_content()


def send_all_again(sessions, settings, sink, campaign_id) -> int:
    before = len(sink.received)
    now = utcnow()
    with session_scope(sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        audience = campaigns.audience_of(session, campaign.audience)
    batches: list[list[int]] = []
    ledger.hand_out_campaign(sessions, campaign_id, audience, now, batch=2, domain=DOMAIN,
                             send=batches.append)  # fmt: skip
    for ids in batches:
        with SmtpSender(sink.url) as sender:
            sending.send_campaign_batch(sessions.kw["bind"], sender, campaign_id, ids,
                                        settings, now)  # fmt: skip
    return len(sink.received) - before


def test_countries_and_sisters_widen_the_audience(notifier_sessions):
    with session_scope(notifier_sessions) as session:
        remember_cities(session, [{"id": 10, "name": "Lyon", "country_code": "FR"},
                                  {"id": 11, "name": "Nice", "country_code": "FR"},
                                  {"id": 20, "name": "Kyoto", "country_code": "JP"}])  # fmt: skip
        on_partnerships_changed(session, [partnership(1, 10, 20)])
        nice = add_subscriber(session, "nice@example.org", [11])
        kyoto = add_subscriber(session, "kyoto@example.org", [20])
        add_subscriber(session, "other@example.org", [30])
        everyone = add_subscriber(session, "all@example.org")

    def audience(**chosen):
        with notifier_sessions() as session:
            return set(campaigns.audience_of(session, campaigns.checked_audience(chosen)))

    assert audience(country_codes=["fr"]) == {nice}
    assert audience(city_ids=[10]) == set()
    assert audience(city_ids=[10], sisters=True) == {kyoto}
    assert audience(country_codes=["FR"], sisters=True) == {nice, kyoto}
    assert len(audience()) == 4 and everyone in audience()


def test_the_audience_is_counted_and_checked_by_the_database(notifier_sessions):
    """The campaign's page shows the audience's size on every view, and the preview whether
    it reaches an address: each is one question to the database about subscribers, never
    every id read back (100 ms at 100,000 subscribers), and agrees with the list sent to."""
    with session_scope(notifier_sessions) as session:
        remember_cities(session, [{"id": 10, "name": "Lyon", "country_code": "FR"},
                                  {"id": 11, "name": "Nice", "country_code": "FR"},
                                  {"id": 20, "name": "Kyoto", "country_code": "JP"}])  # fmt: skip
        on_partnerships_changed(session, [partnership(1, 10, 20)])
        ids = [
            add_subscriber(session, "nice@example.org", [11]),
            add_subscriber(session, "kyoto@example.org", [20, 11]),
            add_subscriber(session, "other@example.org", [30]),
            add_subscriber(session, "all@example.org"),
        ]
        pending = add_subscriber(session, "pending@example.org", [11])
        session.get(Subscriber, pending).status = "pending"
    ids.append(pending)
    audiences = [{}, {"city_ids": [11]}, {"country_codes": ["FR"]}, {"city_ids": [10]},
                 {"city_ids": [10], "sisters": True}, {"city_ids": [99]}]  # fmt: skip
    for chosen in audiences:
        audience = campaigns.checked_audience(chosen)
        with notifier_sessions() as session:
            listed = campaigns.audience_of(session, audience)
            with statements_on(notifier_sessions.kw["bind"]) as counted:
                size = campaigns.audience_size(session, audience)
            with statements_on(notifier_sessions.kw["bind"]) as checked:
                reached = {i for i in ids if campaigns.reaches(session, audience, i)}
        assert size == len(listed) and reached == set(listed), chosen
        if listed:
            counted = [s for s in counted if "FROM subscribers" in s]
            checked = [s for s in checked if "FROM subscribers" in s]
            assert len(counted) == 1 and "count(*)" in counted[0], chosen
            assert len(checked) == len(ids) and all("EXISTS" in s for s in checked), chosen


def test_followers_of_cities_are_counted_through_the_index(notifier_sessions):
    """On PostgreSQL the followers of a campaign's cities are found through
    ``ix_subscribers_city_ids``, not by reading every subscriber's list of cities, nor a
    pending list of the index's."""
    engine = notifier_sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("the index is PostgreSQL's only")
    with session_scope(notifier_sessions) as session:
        now = utcnow()
        session.execute(insert(Subscriber), [
            dict(email=f"s{n}@example.org", frequency="weekly", weekday=0, city_ids=[n % 500],
                 status="confirmed", created_at=now, confirmed_at=now, soft_failures=0)
            for n in range(5000)
        ])  # fmt: skip
        session.execute(text("ANALYZE subscribers"))
    audience = campaigns.checked_audience({"city_ids": [3, 5]})
    with notifier_sessions() as session:
        with statements_on(engine, with_parameters=True) as ran:
            size = campaigns.audience_size(session, audience)
        statement, parameters = ran[0]
        # A small table is read whole whatever the indexes: the plan is asked for with
        # sequential scans priced out, so it names the index only when the index can answer.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = session.connection().exec_driver_sql("EXPLAIN " + statement, parameters)
        assert "ix_subscribers_city_ids" in "\n".join(row[0] for row in plan)
        # Rows written one at a time go into the index itself, not a pending list that every
        # search would read whole until a vacuum.
        options = session.scalar(
            text("SELECT reloptions FROM pg_class WHERE relname = 'ix_subscribers_city_ids'")
        )
        assert options == ["fastupdate=off"]
    assert size == 20


@contextlib.contextmanager
def statements_on(engine, with_parameters: bool = False) -> Iterator[list]:
    """The SQL statements the engine runs meanwhile (with their parameters, if asked)."""
    statements: list = []

    def seen(conn, cursor, statement, parameters, *args):
        statements.append((statement, parameters) if with_parameters else statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_hostile_markdown_is_sanitized_in_the_mail_and_the_page(notifier_sessions):
    body_html = campaign_bodies.html_of(HOSTILE)
    assert "<script" not in body_html and "<img" not in body_html
    # Raw HTML is shown as text, escaped: no element carries a handler.
    assert not re.search(r"<[^>]*\son\w+=", body_html)
    assert "&lt;script&gt;" in body_html
    assert 'href="javascript' not in body_html
    assert (
        '<a href="https://letters.example/sign?x=1&amp;y=2" rel="nofollow noopener">' in body_html
    )
    text = campaign_bodies.text_of(body_html)
    assert "Sign the letter (https://letters.example/sign?x=1&y=2)" in text


@pytest.mark.parametrize(
    "audience",
    [{"city_ids": ["10"]}, {"country_codes": ["France"]}, {"sisters": "yes"}, {"everyone": 1},
     {"city_ids": [0]}, {"city_ids": list(range(1, 200))}],
)  # fmt: skip
def test_a_bad_audience_is_refused(notifier_sessions, audience):
    with pytest.raises(InvalidInput):
        new_campaign(notifier_sessions, audience)


def test_a_sent_campaign_can_no_longer_change(notifier_sessions, mail_settings, sink):
    with session_scope(notifier_sessions) as session:
        add_subscriber(session, "ada@example.org")
    campaign_id = new_campaign(notifier_sessions)
    send_all(notifier_sessions, mail_settings, sink, campaign_id)
    with pytest.raises(Conflict), session_scope(notifier_sessions) as session:
        campaigns.edit(session, campaign_id, "New", "Body", None, utcnow())
    with pytest.raises(Conflict), session_scope(notifier_sessions) as session:
        campaigns.schedule(session, campaign_id, None, utcnow())


def test_a_test_copy_goes_to_its_address_and_not_on_the_ledger(
    notifier_sessions, mail_settings, sink
):
    campaign_id = new_campaign(notifier_sessions)
    with notifier_sessions() as session:
        email = emails.campaign_test(session.get(Campaign, campaign_id), "staff@example.org",
                                     mail_settings)  # fmt: skip
    with SmtpSender(sink.url) as sender:
        sender.send(email.return_path, email.recipient, email.data)
    (received,) = sink.to("staff@example.org")
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with notifier_sessions() as session:
        assert session.scalars(select(Delivery)).all() == []


def test_a_campaigns_rows_do_not_close_a_digest_window(notifier_sessions, mail_settings, sink):
    with session_scope(notifier_sessions) as session:
        ada = add_subscriber(session, "ada@example.org")
    campaign_id = new_campaign(notifier_sessions)
    send_all(notifier_sessions, mail_settings, sink, campaign_id)
    with notifier_sessions() as session:
        assert digests.last_digests(session, [ada]) == {}
        assert subscriber_admin.digests_sent(session, [ada]) == {}  # staff's count of digests
        assert ledger.stale_claims(session, utcnow() + timedelta(days=1)) == []


def test_a_scheduled_campaign_is_due_at_its_time(notifier_sessions):
    campaign_id = new_campaign(notifier_sessions)
    now = utcnow()
    with session_scope(notifier_sessions) as session:
        campaigns.schedule(session, campaign_id, now + timedelta(hours=1), now)
    with notifier_sessions() as session:
        assert campaigns.due(session, now, now) == []
        assert campaigns.due(session, now + timedelta(hours=1), now) == [campaign_id]
    with session_scope(notifier_sessions) as session:
        assert campaigns.start(session, campaign_id, now) is None  # not yet


def test_only_a_draft_changes_or_is_scheduled_and_never_for_a_past_time(notifier_sessions):
    campaign_id = new_campaign(notifier_sessions)
    now = utcnow()
    with pytest.raises(InvalidInput), session_scope(notifier_sessions) as session:
        campaigns.schedule(session, campaign_id, now - timedelta(minutes=1), now)
    with session_scope(notifier_sessions) as session:
        campaigns.schedule(session, campaign_id, now + timedelta(hours=1), now)
    with pytest.raises(Conflict), session_scope(notifier_sessions) as session:
        campaigns.edit(session, campaign_id, "New", "Body", None, now)
    with session_scope(notifier_sessions) as session:
        assert campaigns.unschedule(session, campaign_id).status == "draft"
        campaigns.edit(session, campaign_id, "New", "Body", None, now)


def test_a_send_lost_on_the_way_is_handed_out_again_and_finished(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        for n in range(4):
            add_subscriber(session, f"reader{n}@example.org")
    campaign_id = new_campaign(notifier_sessions)
    now = utcnow()
    with session_scope(notifier_sessions) as session:
        campaigns.schedule(session, campaign_id, None, now)
    with session_scope(notifier_sessions) as session:
        audience = campaigns.audience_of(
            session, campaigns.start(session, campaign_id, now).audience
        )
    lost: list[list[int]] = []  # the batches' messages never reach a worker
    ledger.hand_out_campaign(notifier_sessions, campaign_id, audience, now, batch=2,
                             domain=DOMAIN, send=lost.append)  # fmt: skip
    with session_scope(notifier_sessions) as session:
        campaigns.handed_out(session, campaign_id, now)
        assert not campaigns.finish_if_done(session, campaign_id, now)
    with notifier_sessions() as session:
        assert campaigns.due(session, now, now - ledger.STALE_CLAIM) == []
        later = now + ledger.STALE_CLAIM + timedelta(minutes=1)
        assert campaigns.due(session, later, later - ledger.STALE_CLAIM) == [campaign_id]

    assert send_all_again(notifier_sessions, mail_settings, sink, campaign_id) == 4
    with session_scope(notifier_sessions) as session:
        assert campaigns.finish_if_done(session, campaign_id, utcnow())
        assert not campaigns.finish_if_done(session, campaign_id, utcnow())  # once
    assert send_all_again(notifier_sessions, mail_settings, sink, campaign_id) == 0


def test_each_campaign_mail_waits_for_the_global_mail_rate(
    notifier_sessions, mail_settings, sink, redis_client
):
    """MAIL_RATE's pace (counted in Redis, shared with the digests) is asked before every
    campaign message: its counters add up to the messages sent."""
    import uuid

    with session_scope(notifier_sessions) as session:
        for n in range(5):
            add_subscriber(session, f"reader{n}@example.org")
    campaign_id = new_campaign(notifier_sessions)
    now = utcnow()
    with session_scope(notifier_sessions) as session:
        campaigns.schedule(session, campaign_id, None, now)
        audience = campaigns.audience_of(
            session, campaigns.start(session, campaign_id, now).audience
        )
    batches: list[list[int]] = []
    ledger.hand_out_campaign(notifier_sessions, campaign_id, audience, now, batch=10,
                             domain=DOMAIN, send=batches.append)  # fmt: skip
    prefix = f"test:campaign-rate:{uuid.uuid4().hex}:"
    pace = mail_rate.Pace(redis_client, 100_000, key=prefix + "{}")
    with SmtpSender(sink.url) as sender:
        outcome = sending.send_campaign_batch(notifier_sessions.kw["bind"], sender, campaign_id,
                                              batches[0], mail_settings, now, pace)  # fmt: skip
    counted = sum(int(redis_client.get(key)) for key in redis_client.scan_iter(prefix + "*"))
    assert outcome.sent == 5 and counted == 5
