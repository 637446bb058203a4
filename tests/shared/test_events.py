"""The outbox and once-only handling, against the real service databases."""

import uuid

import pytest
from sqlalchemy import select

from services.directory.models import Base as DirectoryBase
from services.notifier.event_handlers import HANDLERS
from services.notifier.models import Base as NotifierBase
from services.notifier.models import SisterLink
from shared.db import make_session_factory, session_scope
from shared.events import handle_event_once, outbox_table, publish
from tests.conftest import count_rows


def _partnership_event(partnership_id: int = 7) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "directory.partnership_changed",
        "producer": "directory",
        "occurred_at": "2026-11-28T00:00:00+00:00",
        "payload": {
            "change": "created",
            "partnership": {"id": partnership_id, "city_ids": [1, 2], "status": "active"},
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


def test_a_redelivered_event_is_handled_once(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    event = _partnership_event()
    outcomes = [
        handle_event_once(sessions, NotifierBase.metadata, event, HANDLERS) for _ in range(3)
    ]
    assert outcomes == ["handled", "duplicate", "duplicate"]
    with session_scope(sessions) as session:
        links = session.scalars(select(SisterLink)).all()
    assert sorted((link.city_id, link.sister_city_id) for link in links) == [(1, 2), (2, 1)]


def test_a_failing_handler_leaves_no_trace_so_the_retry_can_handle_it(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    event = _partnership_event()

    def broken(session, payload, envelope):
        HANDLERS["directory.partnership_changed"](session, payload, envelope)
        raise RuntimeError("crash after writing")

    with pytest.raises(RuntimeError):
        handle_event_once(
            sessions, NotifierBase.metadata, event, {"directory.partnership_changed": broken}
        )
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM handled_events") == 0
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 0
    assert handle_event_once(sessions, NotifierBase.metadata, event, HANDLERS) == "handled"
    assert count_rows(clean_databases["notifier"], "SELECT count(*) FROM sister_links") == 2


def test_an_event_nobody_handles_is_recorded_and_ignored(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    event = dict(_partnership_event(), type="directory.cities_changed")
    assert handle_event_once(sessions, NotifierBase.metadata, event, HANDLERS) == "ignored"
    assert handle_event_once(sessions, NotifierBase.metadata, event, HANDLERS) == "duplicate"
