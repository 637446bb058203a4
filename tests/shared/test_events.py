"""The outbox and once-only handling, against the real service databases."""

import threading
import uuid

import pytest
from sqlalchemy import select

from services.directory.models import Base as DirectoryBase
from services.notifier.event_handlers import HANDLERS
from services.notifier.models import Base as NotifierBase
from services.notifier.models import KnownCity, PartnershipNews, SisterLink
from shared.db import make_session_factory, session_scope
from shared.events import handle_events_once, outbox_table, publish
from tests.conftest import count_rows
from tests.stack import wait_for


def _partnership_event(
    partnership_id: int = 7, change: str = "created", status: str = "active", **payload
) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "directory.partnership_changed",
        "producer": "directory",
        "occurred_at": "2026-11-28T00:00:00+00:00",
        "payload": {
            "change": change,
            "partnership": {"id": partnership_id, "city_ids": [1, 2], "status": status},
            **payload,
        },
    }


def test_an_event_exists_only_if_its_transaction_commits(clean_databases):
    sessions = make_session_factory(clean_databases["directory"])
    with pytest.raises(RuntimeError), session_scope(sessions) as session:
        publish(session, DirectoryBase.metadata, "directory.partnership_changed", {"n": 1})
        raise RuntimeError("the change failed")
    with session_scope(sessions) as session:
        publish(session, DirectoryBase.metadata, "directory.partnership_changed", {"n": 2})
    with session_scope(sessions) as session:
        outbox = outbox_table(DirectoryBase.metadata)
        payloads = session.execute(select(outbox.c.payload)).scalars().all()
    assert payloads == [{"n": 2}]


def test_an_unknown_event_type_is_refused_before_commit(clean_databases):
    sessions = make_session_factory(clean_databases["directory"])
    with pytest.raises(ValueError, match="unknown event type"), session_scope(sessions) as s:
        publish(s, DirectoryBase.metadata, "directory.partnership_chnaged", {})
    assert count_rows(clean_databases["directory"], "SELECT count(*) FROM outbox_events") == 0


def _links(sessions) -> list[tuple[int, int, int]]:
    with session_scope(sessions) as session:
        links = session.scalars(select(SisterLink)).all()
    return sorted((link.partnership_id, link.city_id, link.sister_city_id) for link in links)


def test_a_redelivered_batch_is_handled_once(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    batch = [_partnership_event(7), _partnership_event(8)]
    outcomes = [
        handle_events_once(sessions, NotifierBase.metadata, batch, HANDLERS) for _ in range(3)
    ]
    assert outcomes == [
        {"handled": 2, "duplicate": 0, "ignored": 0},
        {"handled": 0, "duplicate": 2, "ignored": 0},
        {"handled": 0, "duplicate": 2, "ignored": 0},
    ]
    assert _links(sessions) == [(7, 1, 2), (7, 2, 1), (8, 1, 2), (8, 2, 1)]


def test_a_batch_overlapping_a_handled_one_applies_only_its_new_events(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    first, second, third = (_partnership_event(n) for n in (7, 8, 9))
    handle_events_once(sessions, NotifierBase.metadata, [first, second], HANDLERS)
    # Partnership 8 is deleted meanwhile; its old creation, delivered again, must not undo it.
    deleted = _partnership_event(8, "deleted")
    handle_events_once(sessions, NotifierBase.metadata, [deleted], HANDLERS)
    outcome = handle_events_once(sessions, NotifierBase.metadata, [second, third], HANDLERS)
    assert outcome == {"handled": 1, "duplicate": 1, "ignored": 0}
    assert _links(sessions) == [(7, 1, 2), (7, 2, 1), (9, 1, 2), (9, 2, 1)]


def test_an_event_twice_in_one_batch_is_handled_once(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    event = _partnership_event()
    outcome = handle_events_once(sessions, NotifierBase.metadata, [event, event], HANDLERS)
    assert outcome == {"handled": 1, "duplicate": 1, "ignored": 0}
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM partnership_news") == 1


def test_a_batch_applies_its_changes_in_order(clean_databases):
    """Created, deleted and created again in one batch: what applying them one by one leaves."""
    sessions = make_session_factory(clean_databases["notifier"])

    def change(kind: str, status: str) -> dict:
        city = {"id": 1, "name": f"One {kind}", "country_code": "FR"}
        return _partnership_event(7, kind, status, cities=[city])

    batch = [change("created", "active"), change("deleted", "active"),
             change("created", "proposed"), change("updated", "inactive")]  # fmt: skip
    handle_events_once(sessions, NotifierBase.metadata, batch, HANDLERS)
    with session_scope(sessions) as session:
        statuses = {link.status for link in session.scalars(select(SisterLink))}
        news = session.scalars(select(PartnershipNews)).all()
        city = session.get(KnownCity, 1)
    assert statuses == {"inactive"}
    assert len(news) == 1
    assert city.name == "One updated"


def test_a_failing_handler_leaves_no_trace_so_the_redelivered_batch_is_handled(
    clean_databases,
):
    sessions = make_session_factory(clean_databases["notifier"])
    batch = [_partnership_event(7), _partnership_event(8)]

    def broken(session, payloads):
        HANDLERS["directory.partnership_changed"](session, payloads)
        raise RuntimeError("crash after writing")

    with pytest.raises(RuntimeError):
        handle_events_once(
            sessions, NotifierBase.metadata, batch, {"directory.partnership_changed": broken}
        )
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM handled_events") == 0
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 0
    outcome = handle_events_once(sessions, NotifierBase.metadata, batch, HANDLERS)
    assert outcome["handled"] == 2
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 4


def test_two_copies_of_a_batch_handled_at_once_apply_it_once(clean_databases):
    """A batch redelivered while its first copy still runs (its worker seemed lost): the second
    copy waits for the first's ledger rows, then finds every event taken."""
    engine = clean_databases["notifier"]
    sessions = make_session_factory(engine)
    batch = [_partnership_event(n) for n in range(1, 51)]
    claimed, release = threading.Event(), threading.Event()

    def slow(session, payloads):
        HANDLERS["directory.partnership_changed"](session, payloads)
        claimed.set()
        release.wait(timeout=30)

    outcomes = []

    def handle(handlers) -> None:
        outcomes.append(handle_events_once(sessions, NotifierBase.metadata, batch, handlers))

    first = threading.Thread(target=handle, args=({"directory.partnership_changed": slow},))
    first.start()
    assert claimed.wait(timeout=30)
    second = threading.Thread(target=handle, args=(HANDLERS,))
    second.start()
    if engine.dialect.name == "postgresql":
        # The second copy is waiting on the first's uncommitted ledger rows.
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        wait_for(lambda: count_rows(engine, waiting) > 0, what="the second copy to wait")
    release.set()
    first.join()
    second.join()
    assert sorted(outcome["handled"] for outcome in outcomes) == [0, 50]
    assert sorted(outcome["duplicate"] for outcome in outcomes) == [0, 50]
    assert count_rows(engine, "SELECT count(*) FROM sister_links") == 100
    assert count_rows(engine, "SELECT count(*) FROM partnership_news") == 50


def test_an_event_nobody_handles_is_recorded_and_ignored(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    event = dict(_partnership_event(), type="directory.index_reloaded")
    assert handle_events_once(sessions, NotifierBase.metadata, [event], HANDLERS)["ignored"] == 1
    assert handle_events_once(sessions, NotifierBase.metadata, [event], HANDLERS)["duplicate"] == 1
