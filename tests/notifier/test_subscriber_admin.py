"""Staff's work on subscribers: found by the start of their address in any case, a page at a
time; seen with their digests and bounces; a pending one's confirmation sent again (only the
new link confirms); unsubscribed; erased on request with the address gone from every text of
the notifier's database and the counts kept; exported as CSV no spreadsheet reads a formula
from."""

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import JSON, MetaData, String, Text, cast, func, insert, select

from services.notifier import ledger, stats, subscriber_admin, subscriptions
from services.notifier.models import (
    Base,
    BounceReport,
    Delivery,
    KnownCity,
    Subscriber,
    outbox_events,
)
from shared import audit
from shared.actor import acting_as, staff_actor
from shared.db import session_scope
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import utcnow

ADA = staff_actor(7, "Ada Admin", "ada@staff.example")


def add(engine, email: str, status: str = "confirmed", cities=(), **fields) -> int:
    now = utcnow()
    values = dict(
        email=email, frequency="weekly", weekday=0, city_ids=list(cities), status=status,
        created_at=now - timedelta(days=3), soft_failures=0, confirmations=1,
        confirmed_at=now - timedelta(days=2) if status == "confirmed" else None,
    )  # fmt: skip
    with engine.begin() as conn:
        return conn.execute(
            insert(Subscriber).values({**values, **fields}).returning(Subscriber.id)
        ).scalar_one()


def addresses(page: dict) -> list[str]:
    return [row["email"] for row in page["results"]]


def test_subscribers_are_found_by_the_start_of_their_address_in_any_case(
    clean_databases, notifier_sessions
):
    engine = clean_databases["notifier"]
    for email in ("Ada@example.org", "adam@example.org", "bob@ada.example", "a_b@example.org"):
        add(engine, email)
    with notifier_sessions() as session:
        assert addresses(subscriber_admin.find(session, "ADA")) == [
            "adam@example.org",
            "Ada@example.org",
        ]
        assert addresses(subscriber_admin.find(session, "ada@")) == ["Ada@example.org"]
        # LIKE's wildcards are letters like any other here.
        assert addresses(subscriber_admin.find(session, "a_")) == ["a_b@example.org"]
        assert addresses(subscriber_admin.find(session, "%")) == []
        assert len(subscriber_admin.find(session, "  ")["results"]) == 4
        for bad in ("x" * 255, "ada\x00"):
            with pytest.raises(InvalidInput):
                subscriber_admin.find(session, bad)
        with pytest.raises(InvalidInput):
            subscriber_admin.find(session, limit=101)


def test_the_list_comes_a_page_at_a_time_newest_first(clean_databases, notifier_sessions):
    engine = clean_databases["notifier"]
    ids = [add(engine, f"reader{n}@example.org") for n in range(5)]
    with notifier_sessions() as session:
        first = subscriber_admin.find(session, limit=2)
        second = subscriber_admin.find(session, before_id=first["next_before_id"], limit=2)
        last = subscriber_admin.find(session, before_id=second["next_before_id"], limit=2)
    seen = [row["id"] for page in (first, second, last) for row in page["results"]]
    assert seen == ids[::-1]
    assert last["next_before_id"] is None


def test_a_subscribers_page_shows_state_cities_digests_and_bounces(
    clean_databases, notifier_sessions
):
    engine = clean_databases["notifier"]
    subscriber_id = add(engine, "ada@example.org", cities=[11, 12])
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(KnownCity).values(city_id=11, name="Kuopio", country_code="FI"))
        for week, status in ((46, "sent"), (47, "sent"), (48, "empty")):
            conn.execute(insert(Delivery).values(
                subscriber_id=subscriber_id, period=f"weekly:2026-W{week}", status=status,
                message_id=f"<m{week}@x>", stories=1, attempts=1, created_at=now,
                sent_at=now - timedelta(days=50 - week),
            ))  # fmt: skip
        conn.execute(insert(BounceReport).values(
            subscriber_id=subscriber_id, message="digest:1", kind="soft", reason="mailbox full",
            received_at=now,
        ))  # fmt: skip
    with notifier_sessions() as session:
        seen = subscriber_admin.detail(session, subscriber_id)
        with pytest.raises(NotFound):
            subscriber_admin.detail(session, subscriber_id + 1)
    assert seen["status"] == "confirmed" and seen["email"] == "ada@example.org"
    assert seen["cities"] == [{"id": 11, "name": "Kuopio"}, {"id": 12, "name": None}]
    assert seen["digests_sent"] == 2
    assert seen["last_digest_at"] == (now - timedelta(days=3)).isoformat()
    assert seen["bounces"] == {"hard": 0, "soft": 1, "complaint": 0}
    assert seen["recent_bounces"][0]["reason"] == "mailbox full"


def test_a_pending_subscribers_confirmation_is_sent_again_and_only_the_new_link_confirms(
    clean_databases, notifier_sessions, tokens
):
    engine = clean_databases["notifier"]
    pending = add(engine, "ada@example.org", status="pending")
    confirmed = add(engine, "bob@example.org")
    with notifier_sessions() as session:
        old_link = subscriptions.confirmation_token(tokens, session.get(Subscriber, pending))
    with acting_as(ADA), session_scope(notifier_sessions) as session:
        to_mail = subscriber_admin.resend_confirmation(session, pending, utcnow())
        with pytest.raises(Conflict):
            subscriber_admin.resend_confirmation(session, confirmed, utcnow())
    assert (to_mail.kind, to_mail.subscriber_id) == ("confirm", pending)
    with session_scope(notifier_sessions) as session:
        with pytest.raises(InvalidInput):
            subscriptions.confirm(session, tokens, old_link, utcnow())
        new_link = subscriptions.confirmation_token(tokens, session.get(Subscriber, pending))
        assert subscriptions.confirm(session, tokens, new_link, utcnow())[1] is True
    entries = history(notifier_sessions, pending)
    assert [(e["action"], e["actor"]["id"]) for e in entries] == [
        ("subscriber.confirmation_resent", "staff:7"),
        ("subscriber.confirmed", f"subscriber:{pending}"),
    ]


def history(sessions, subscriber_id: int) -> list[dict]:
    """The subscriber's entries on the notifier's audit log, oldest first."""
    with sessions() as session:
        page = audit.list_entries(
            session, Base.metadata, "notifier", "subscriber", str(subscriber_id)
        )
    return page["results"][::-1]


def test_staff_unsubscribe_a_subscriber_on_record_under_their_name(
    clean_databases, notifier_sessions
):
    subscriber_id = add(clean_databases["notifier"], "ada@example.org")
    for _twice in range(2):
        with acting_as(ADA), session_scope(notifier_sessions) as session:
            subscriber_admin.unsubscribe(session, subscriber_id, utcnow())
    with notifier_sessions() as session:
        assert subscriber_admin.detail(session, subscriber_id)["status"] == "unsubscribed"
    entries = history(notifier_sessions, subscriber_id)
    assert [(e["action"], e["actor"]["name"], e["summary"]) for e in entries] == [
        ("subscriber.unsubscribed", ADA["name"], {"status_before": "confirmed"})
    ]
    with pytest.raises(NotFound), session_scope(notifier_sessions) as session:
        subscriber_admin.unsubscribe(session, 999_999, utcnow())


ADDRESS = "Erase.Me@Example.org"


def texts_holding(engine, needle: str) -> list[str]:
    """Every text or JSON column of every table of the database (read from the database
    itself, not the models) whose value holds ``needle`` in any case: table.column."""
    metadata = MetaData()
    metadata.reflect(engine)
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON):
                    continue
                holds = func.lower(cast(column, Text)).contains(needle.lower(), autoescape=True)
                if conn.scalar(select(func.count()).select_from(table).where(holds)):
                    found.append(f"{table.name}.{column.name}")
    return found


def test_an_erased_subscribers_address_is_nowhere_in_the_notifiers_database_and_counts_stay(
    clean_databases, notifier_sessions, tokens
):
    engine = clean_databases["notifier"]
    erased = add(engine, ADDRESS, cities=[11])
    kept = add(engine, "keep@example.org")
    now = utcnow()
    quoted = f"550 5.1.1 <{ADDRESS.lower()}>: Recipient address rejected"
    with engine.begin() as conn:
        conn.execute(insert(Delivery).values(
            subscriber_id=erased, period="weekly:2026-W47", status="sent", message_id="<m@x>",
            stories=1, attempts=1, created_at=now, sent_at=now,
        ))  # fmt: skip
        conn.execute(insert(Delivery).values(
            subscriber_id=erased, period="weekly:2026-W48", status="failed", message_id="<n@x>",
            stories=1, attempts=1, created_at=now, error=quoted,
        ))  # fmt: skip
        conn.execute(insert(BounceReport).values(
            subscriber_id=erased, message="digest:2", kind="hard", reason=quoted, received_at=now,
        ))  # fmt: skip
        in_flight = conn.execute(insert(Delivery).values(
            subscriber_id=erased, period="weekly:2026-W49", status="claimed", message_id="<o@x>",
            stories=1, attempts=1, created_at=now,
        ).returning(Delivery.id)).scalar_one()  # fmt: skip
        # Whatever else may have quoted it: an outbox payload, a staff member's own address
        # as the actor of an entry, an entry's summary.
        conn.execute(insert(outbox_events).values(
            event_id="e1", event_type="notifier.test", occurred_at=now,
            payload={"to": [ADDRESS.upper()], "note": "sent to " + ADDRESS},
        ))  # fmt: skip
    with acting_as(staff_actor(3, "Erase Me", ADDRESS)), session_scope(notifier_sessions) as s:
        audit.record(s, Base.metadata, "digests.preview", "subscriber", erased, {"to": ADDRESS})
    assert len(texts_holding(engine, ADDRESS)) >= 6

    with acting_as(ADA), session_scope(notifier_sessions) as session:
        counts_before = stats.subscribers(session)["total"]
        assert subscriber_admin.erase(session, erased, utcnow()) == {"id": erased, "erased": True}
    with acting_as(ADA), session_scope(notifier_sessions) as session:
        assert subscriber_admin.erase(session, erased, utcnow()) == {"id": erased, "erased": True}

    assert texts_holding(engine, ADDRESS) == []
    assert texts_holding(engine, "keep@example.org") == ["subscribers.email"]
    with notifier_sessions() as session:
        seen = subscriber_admin.detail(session, erased)
        assert stats.subscribers(session)["total"] == counts_before
    assert (seen["email"], seen["status"], seen["cities"]) == (None, "erased", [])
    assert seen["digests_sent"] == 1 and seen["bounces"]["hard"] == 1
    assert "[erased]" in seen["recent_bounces"][0]["reason"]
    actions = [e["action"] for e in history(notifier_sessions, erased)]
    assert actions == ["digests.preview", "subscriber.erased"]
    # A report about an old message arriving later does not bring the address back.
    bounce_id = tokens.bounce_ids.make(erased, "digest", 1)
    with session_scope(notifier_sessions) as session:
        assert (
            subscriptions.record_bounce(session, tokens, bounce_id, "hard", quoted, utcnow())
            is None
        )
    # Nor does the server's refusal of a digest that was on its way (it quotes the address).
    ledger.record_failure(notifier_sessions, in_flight, erased, quoted, permanent=True)
    assert texts_holding(engine, ADDRESS) == []
    with notifier_sessions() as session:
        assert session.get(Delivery, in_flight).status == "failed"
        assert session.get(Subscriber, erased).status == "erased"
    with pytest.raises(Conflict), session_scope(notifier_sessions) as session:
        subscriber_admin.unsubscribe(session, erased, utcnow())
    del kept


HOSTILE_ADDRESSES = [
    "=cmd@example.org",
    "+sum@example.org",
    "-2@example.org",
    "plain@example.org",
]
HOSTILE_CITIES = {
    21: '=HYPERLINK("https://evil.example","x")',
    22: "@SUM(1+1)",
    23: "\tTabbed",
    24: "\rReturned",
    25: "Washington, D.C.",
    26: 'Say "hi"\nthere',
}


def test_the_csv_export_reads_as_text_in_any_spreadsheet(clean_databases, notifier_sessions):
    engine = clean_databases["notifier"]
    with engine.begin() as conn:
        for city_id, name in HOSTILE_CITIES.items():
            conn.execute(insert(KnownCity).values(city_id=city_id, name=name, country_code="US"))
    for n, email in enumerate(HOSTILE_ADDRESSES):
        add(engine, email, cities=list(HOSTILE_CITIES) if n == 0 else [])
    add(engine, "gone@example.org", status="erased")
    with notifier_sessions() as session:
        first = subscriber_admin.export_page(session, limit=3)
        rest = subscriber_admin.export_page(session, after_id=first["next_after_id"], limit=3)
    assert rest["next_after_id"] is None
    rows = list(csv.reader(io.StringIO(first["csv"] + rest["csv"])))
    assert rows[0] == list(subscriber_admin.EXPORT_COLUMNS)
    emails = [row[1] for row in rows[1:]]
    assert emails == [
        "'=cmd@example.org",
        "'+sum@example.org",
        "'-2@example.org",
        HOSTILE_ADDRESSES[3],
    ]
    assert "gone@example.org" not in first["csv"] + rest["csv"]
    for row in rows:
        for cell in row:
            assert not cell.startswith(subscriber_admin.FORMULA_STARTS), (row, cell)
    # Each city's cell starts with the first city's name, quoted as it began with "=".
    assert rows[1][4].startswith("'=HYPERLINK(") and "Washington, D.C." in rows[1][4]
    for name in HOSTILE_CITIES.values():
        assert name in rows[1][4]
    with pytest.raises(InvalidInput), notifier_sessions() as session:
        subscriber_admin.export_page(session, limit=0)


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("a=b", "a=b"), (None, ""), (3, "3"), ("", "")],
)  # fmt: skip
def test_cells_that_could_start_a_formula_are_quoted(cell, shown):
    assert subscriber_admin.formula_safe(cell) == shown
