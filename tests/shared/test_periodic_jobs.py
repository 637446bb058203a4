"""Beat sends what each service declares; the periodic purge keeps the event tables small
without forgetting anything a late duplicate could still need."""

from datetime import timedelta

from sqlalchemy import insert, select

from services.notifier.models import Base as NotifierBase
from shared.db import make_session_factory, session_scope
from shared.events import handled_table, outbox_table, utcnow
from shared.relay import purge_old_events
from shared.routing import SERVICES
from sistercities.beat import collect_schedule


def test_beat_collects_every_services_periodic_tasks():
    schedule = collect_schedule()
    for service in SERVICES:
        entry = schedule[f"{service}.purge_events"]
        assert entry["task"] == f"{service}.purge_events"
        assert entry["schedule"] > 0


def test_purge_removes_only_old_sent_events_and_old_ledger_rows(clean_databases):
    sessions = make_session_factory(clean_databases["notifier"])
    now = utcnow()
    outbox, handled = outbox_table(NotifierBase.metadata), handled_table(NotifierBase.metadata)
    with session_scope(sessions) as session:
        for event_id, sent_at in [
            ("old-sent", now - timedelta(days=8)),
            ("new-sent", now - timedelta(days=1)),
            ("old-unsent", None),
        ]:
            session.execute(
                insert(outbox).values(
                    event_id=event_id,
                    event_type="blog.post_published",
                    payload={},
                    occurred_at=now - timedelta(days=9),
                    sent_at=sent_at,
                )
            )
        for event_id, age in [("old-handled", 31), ("new-handled", 29)]:
            session.execute(
                insert(handled).values(
                    event_id=event_id, event_type="x", handled_at=now - timedelta(days=age)
                )
            )
    with session_scope(sessions) as session:
        assert purge_old_events(session, NotifierBase.metadata) == {
            "outbox_events": 1,
            "handled_events": 1,
        }
    with session_scope(sessions) as session:
        assert sorted(session.scalars(select(outbox.c.event_id))) == ["new-sent", "old-unsent"]
        assert list(session.scalars(select(handled.c.event_id))) == ["new-handled"]
