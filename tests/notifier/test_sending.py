"""Digests built from the notifier's own copy of the news and sent through a real SMTP server:
the right stories, both parts, one-click unsubscribe headers, and exactly one digest per
subscriber and period whatever is retried, refused or run twice at once."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from services.notifier import digests, ledger, sending
from services.notifier.event_handlers import on_partnerships_changed, on_posts_announced
from services.notifier.models import Delivery, Subscriber
from services.notifier.senders import SmtpSender
from shared.db import session_scope
from shared.events import utcnow

DOMAIN = "sister.example"


def story(post_id: int, city_ids: list[int], title: str | None = None) -> dict:
    return {
        "id": post_id, "title": title or f"Story {post_id}", "excerpt": f"About story {post_id}…",
        "url": f"https://medium.com/p/{post_id:012x}", "image": "https://cdn.example/i.jpg",
        "published_at": utcnow().isoformat(), "city_ids": city_ids, "tags": [],
        "source_name": "Medium",
    }  # fmt: skip


def add_subscriber(session, email, cities=(), frequency="weekly", weekday=0, confirmed_ago=1):
    subscriber = Subscriber(
        email=email, frequency=frequency, weekday=weekday, city_ids=list(cities),
        status="confirmed", created_at=utcnow() - timedelta(days=confirmed_ago),
        confirmed_at=utcnow() - timedelta(days=confirmed_ago), soft_failures=0,
    )  # fmt: skip
    session.add(subscriber)
    session.flush()
    return subscriber.id


def partnership(pid: int, a: int, b: int) -> dict:
    return {"change": "created", "partnership": {"id": pid, "city_ids": [a, b], "status": "active"}}


def news(sessions, *stories):
    with session_scope(sessions) as session:
        on_partnerships_changed(session, [partnership(1, 10, 20)])  # 10 and 20 are sisters
        on_posts_announced(session, list(stories))


def run(sessions, settings, sink, subscriber_ids, period="weekly:2026-W48"):
    with session_scope(sessions) as session:
        claimed = ledger.claim(session, subscriber_ids, period, utcnow(), DOMAIN)
    with SmtpSender(sink.url) as sender:
        return sending.send_batch(sessions.kw["bind"], sender, claimed, settings, utcnow())


def test_a_story_is_read_on_medium_only_when_it_comes_from_medium(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        reader = add_subscriber(session, "reader@example.org", [10])
    elsewhere = {
        **story(2, [10]),
        "url": "https://news.example.org/a",
        "source_name": "news.example.org",
    }
    older = {key: value for key, value in story(3, [10]).items() if key != "source_name"}
    news(notifier_sessions, story(1, [10]), elsewhere, older)
    run(notifier_sessions, mail_settings, sink, [reader])

    (mail,) = sink.to("reader@example.org")
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "Read on Medium: https://medium.com/p/000000000001" in text
    assert "Read on news.example.org: https://news.example.org/a" in text
    # A story announced before the source was sent says no more than it knows.
    assert "Read on the original site: https://medium.com/p/000000000003" in text
    assert html.count("Read on Medium") == 1 and "Read on news.example.org" in html


def test_each_subscriber_gets_the_stories_of_their_cities_and_sisters(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        follows_10 = add_subscriber(session, "ten@example.org", [10])
        follows_30 = add_subscriber(session, "thirty@example.org", [30])
        everything = add_subscriber(session, "all@example.org")
    news(notifier_sessions, story(1, [20]), story(2, [10, 99]), story(3, [77]))

    outcome = run(notifier_sessions, mail_settings, sink, [follows_10, follows_30, everything])
    assert (outcome.sent, outcome.empty) == (2, 1)  # thirty: no news, no mail

    (ten,) = sink.to("ten@example.org")
    message = ten.message
    assert message["Subject"] == "2 new stories from the cities you follow and their sister cities"
    assert message["Message-ID"] == f"<digest.weekly.2026-W48.{follows_10}@{DOMAIN}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert (
        unsubscribe.startswith("<https://sister.example/unsubscribe/") and "mailto:" in unsubscribe
    )
    # Raw, as a mail client reads it: the link itself, not an encoded word.
    assert b"List-Unsubscribe: <https://sister.example/unsubscribe/" in ten.data
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Story 1" in text and "Story 2" in text and "Story 3" not in text
    assert "Read on Medium" in html and "https://medium.com/p/000000000002" in html
    token = unsubscribe[1:].split(">")[0].rsplit("/", 1)[1]
    assert f"/unsubscribe/{token}" in html
    assert f"https://sister.example/unsubscribe/{token}" in text.splitlines()
    assert "/preferences/" in html and "/preferences/" in text
    # The fast path (one encoded message, marks filled in) kept the encoder's line length
    # (78 with the email package's SMTP policy), long links included.
    body_lines = ten.data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 78
    assert "%%" not in text and "%%" not in html
    assert "3 new stories" in sink.to("all@example.org")[0].message["Subject"]
    with notifier_sessions() as session:
        rows = {d.subscriber_id: d.status for d in session.scalars(select(Delivery))}
    assert rows == {follows_10: "sent", follows_30: "empty", everything: "sent"}


def test_titles_cannot_inject_headers_or_markup(notifier_sessions, mail_settings, sink):
    with session_scope(notifier_sessions) as session:
        ada = add_subscriber(session, "ada@example.org")
    news(notifier_sessions, story(1, [], title="Hi\r\nBcc: victim@example.org <script>x</script>"))
    run(notifier_sessions, mail_settings, sink, [ada])
    (received,) = sink.received
    assert received.recipients == ["ada@example.org"]
    assert "Bcc" not in str(received.message.keys())
    assert "<script>" not in received.message.get_body(("html",)).get_content()


def test_running_twice_or_twice_at_once_sends_one_digest_each(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"s{n}@example.org") for n in range(30)]
    news(notifier_sessions, story(1, []))
    with session_scope(notifier_sessions) as session:
        claimed = ledger.claim(session, ids, "weekly:2026-W48", utcnow(), DOMAIN)

    def send():
        with SmtpSender(sink.url) as sender:
            sending.send_batch(
                notifier_sessions.kw["bind"], sender, claimed, mail_settings, utcnow()
            )

    workers = [threading.Thread(target=send) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    send()
    assert run(notifier_sessions, mail_settings, sink, ids).sent == 0  # the period is done
    recipients = [r for item in sink.received for r in item.recipients]
    assert sorted(recipients) == sorted(f"s{n}@example.org" for n in range(30))
    assert len({item.message["Message-ID"] for item in sink.received}) == 30
    with notifier_sessions() as session:
        accepted = session.scalars(select(Delivery.accepted_at)).all()
    assert len(accepted) == 30 and all(accepted)  # every 250 recorded


def test_a_refused_address_bounces_alone_and_a_down_server_is_retried(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"s{n}@example.org") for n in range(3)]
    news(notifier_sessions, story(1, []))
    sink.refuse["s1@example.org"] = "550 5.1.1 no such user"
    outcome = run(notifier_sessions, mail_settings, sink, ids)
    assert (outcome.sent, outcome.failed) == (2, 1)
    with notifier_sessions() as session:
        assert session.get(Subscriber, ids[1]).status == "bounced"

    with session_scope(notifier_sessions) as session:
        later = [add_subscriber(session, f"later{n}@example.org") for n in range(2)]
    sink.stop()  # the server is down
    outcome = run(notifier_sessions, mail_settings, sink, later)
    assert outcome.sent == 0 and len(outcome.retry) == 2
    sink.start()  # and back
    outcome = run(notifier_sessions, mail_settings, sink, later)
    assert outcome.sent == 2
    assert len(sink.to("later0@example.org")) == len(sink.to("later1@example.org")) == 1


def test_who_is_due(notifier_sessions):
    now = utcnow()
    with session_scope(notifier_sessions) as session:
        daily = add_subscriber(session, "d@example.org", frequency="daily")
        weekly_today = add_subscriber(session, "w@example.org", weekday=now.weekday())
        weekly_later = add_subscriber(session, "l@example.org", weekday=(now.weekday() + 1) % 7)
    with notifier_sessions() as session:
        assert digests.due_subscribers(session, "daily", now) == [daily]
        weekly = digests.due_subscribers(session, "weekly", now)
        assert weekly_today in weekly
        assert (weekly_later in weekly) == ((now.weekday() + 1) % 7 <= now.weekday())
        assert set(digests.due_subscribers(session, "weekly", now, every=True)) == {
            weekly_today, weekly_later,
        }  # fmt: skip
    with session_scope(notifier_sessions) as session:
        ledger.claim(session, [daily], digests.period_of("daily", now), now, DOMAIN)
    with notifier_sessions() as session:
        assert digests.due_subscribers(session, "daily", now) == []
        assert digests.due_subscribers(session, "daily", now + timedelta(days=1)) == [daily]


def test_a_digest_holds_twenty_stories_and_counts_the_rest(notifier_sessions, mail_settings, sink):
    with session_scope(notifier_sessions) as session:
        ada = add_subscriber(session, "ada@example.org")
    news(notifier_sessions, *[story(n, []) for n in range(1, 26)])
    run(notifier_sessions, mail_settings, sink, [ada])
    message = sink.received[0].message
    assert message["Subject"].startswith("25 new stories")
    text = message.get_body(("plain",)).get_content()
    assert text.count("Read on Medium") == 20 and "and 5 more" in text


def test_new_sister_cities_are_news_and_followed_cities_are_named(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        ada = add_subscriber(session, "ada@example.org", [10])
        everyone = add_subscriber(session, "all@example.org")
        on_partnerships_changed(session, [{
            "change": "created",
            "partnership": {"id": 7, "city_ids": [10, 30], "status": "active", "since": 2009},
            "cities": [{"id": 10, "name": "Minneapolis", "country_code": "US"},
                       {"id": 30, "name": "Najaf", "country_code": "IQ"}],
        }])  # fmt: skip
    outcome = run(notifier_sessions, mail_settings, sink, [ada, everyone])
    assert (outcome.sent, outcome.empty) == (1, 1)  # a partnership is not news for everyone
    message = sink.to("ada@example.org")[0].message
    assert message["Subject"] == "New sister cities for Minneapolis"
    text = message.get_body(("plain",)).get_content()
    assert "Minneapolis and Najaf, since 2009" in text

    news(notifier_sessions, story(1, [30]))  # a story about the new sister
    with session_scope(notifier_sessions) as session:
        session.execute(Delivery.__table__.delete())
    run(notifier_sessions, mail_settings, sink, [ada], period="weekly:2026-W49")
    latest = sink.to("ada@example.org")[-1].message
    assert latest["Subject"].startswith("1 new story from Minneapolis and its sister cities")


def test_a_batch_that_ends_in_an_error_keeps_the_250s_it_heard(
    notifier_sessions, mail_settings, sink
):
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"e{n}@example.org") for n in range(3)]
        claimed = ledger.claim(session, ids, "weekly:2026-W48", utcnow(), DOMAIN)
    news(notifier_sessions, story(1, []))
    paced = []

    def pace():  # the second message's turn never comes: the batch dies (a lost database, say)
        paced.append(1)
        if len(paced) == 2:
            raise RuntimeError("the batch dies here")

    with SmtpSender(sink.url) as sender, pytest.raises(RuntimeError):
        sending.send_batch(
            notifier_sessions.kw["bind"], sender, claimed, mail_settings, utcnow(), pace
        )
    assert len(sink.received) == 1
    with notifier_sessions() as session:
        first = session.get(Delivery, claimed[0])
        # Sent and known to be accepted: not mistaken for one a crash may have lost.
        assert first.status == "sent" and first.accepted_at is not None
        assert session.get(Delivery, claimed[1]).status == "claimed"


def test_a_hand_out_killed_before_its_last_send_gets_back_the_rows_it_still_holds(
    notifier_sessions,
):
    """The state a notifier killed inside ``schedule_digests`` leaves: rows it claimed, none
    sent. Its redelivered message (same task id) gets them back; no other hand-out does, and a
    row once sent is not handed out again."""
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"held{n}@example.org") for n in range(3)]
    with session_scope(notifier_sessions) as session:
        claimed = ledger.claim(
            session, ids, "weekly:2026-W48", utcnow(), DOMAIN, claimant="killed-hand-out"
        )
    with session_scope(notifier_sessions) as session:
        assert ledger.claims_of(session, "killed-hand-out") == claimed
        assert ledger.claims_of(session, "another-hand-out") == []
        session.get(Delivery, claimed[0]).status = "sent"
    with session_scope(notifier_sessions) as session:
        assert ledger.claims_of(session, "killed-hand-out") == claimed[1:]


COMMIT_FAILS_ONCE = (
    "CREATE SEQUENCE commit_fails_once",
    """CREATE FUNCTION commit_fails_once() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF nextval('commit_fails_once') = 1 THEN RAISE EXCEPTION 'this commit fails'; END IF;
         RETURN NULL;
       END $$""",
    """CREATE CONSTRAINT TRIGGER commit_fails_once AFTER UPDATE ON deliveries
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
       WHEN (OLD.status = 'claimed' AND NEW.status = 'sent')
       EXECUTE FUNCTION commit_fails_once()""",
)


@pytest.fixture
def first_mark_fails_at_commit(notifier_sessions):
    """The first mark's COMMIT refused by the database, as a crash at that instant would lose
    it: a sequence counts the tries (it is outside every transaction)."""
    engine = notifier_sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite commits before a message's last line: no COMMIT is ever in flight")
    with engine.begin() as conn:
        for statement in COMMIT_FAILS_ONCE:
            conn.execute(text(statement))
    yield
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER commit_fails_once ON deliveries"))
        conn.execute(text("DROP FUNCTION commit_fails_once()"))
        conn.execute(text("DROP SEQUENCE commit_fails_once"))


def test_a_mark_whose_commit_fails_after_the_last_line_is_made_again_and_not_sent_twice(
    notifier_sessions, mail_settings, sink, first_mark_fails_at_commit
):
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"doubt{n}@example.org") for n in range(2)]
        claimed = ledger.claim(session, ids, "weekly:2026-W48", utcnow(), DOMAIN)
    news(notifier_sessions, story(1, []))
    with SmtpSender(sink.url) as sender, pytest.raises(DBAPIError, match="this commit fails"):
        sending.send_batch(notifier_sessions.kw["bind"], sender, claimed, mail_settings, utcnow())
    # The "." had gone with the COMMIT: the message is at the server, and its row was marked
    # again on the way out, named as sent and not acknowledged.
    assert [item.recipients for item in sink.received] == [["doubt0@example.org"]]
    with notifier_sessions() as session:
        first = session.get(Delivery, claimed[0])
        assert (first.status, first.accepted_at) == ("sent", None)
        assert session.get(Delivery, claimed[1]).status == "claimed"
    run_again = run(notifier_sessions, mail_settings, sink, ids)  # the task's retry
    assert run_again.sent == 1
    assert sorted(r for item in sink.received for r in item.recipients) == [
        "doubt0@example.org", "doubt1@example.org",
    ]  # fmt: skip
