"""Handing out the ledger's rows: what a killed hand-out claimed comes back to its own
redelivered run first, then claims no task finished, then the subscribers now due, in batches."""

from datetime import timedelta

from sqlalchemy import select, update

from services.notifier import ledger
from services.notifier.models import Delivery
from shared.db import session_scope
from shared.events import utcnow
from tests.notifier.test_sending import DOMAIN, add_subscriber


def test_a_hand_out_sends_back_its_own_claims_then_stale_ones_then_the_due_in_batches(
    notifier_sessions,
):
    now = utcnow()
    with session_scope(notifier_sessions) as session:
        ids = [add_subscriber(session, f"r{n}@example.org", frequency="daily") for n in range(7)]
    with session_scope(notifier_sessions) as session:
        mine = ledger.claim(session, ids[:3], "daily:2026-01-01", now, DOMAIN, "the-hand-out")
        stale = ledger.claim(session, ids[3:4], "daily:2026-01-01", now, DOMAIN, "a-lost-one")
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(stale))
            .values(created_at=now - ledger.STALE_CLAIM - timedelta(seconds=1))
        )
    sent: list[list[int]] = []

    handed_out = ledger.hand_out(
        notifier_sessions,
        notifier_sessions,
        ["daily"],
        now,
        batch=2,
        domain=DOMAIN,
        claimant="the-hand-out",
        every=False,
        send=sent.append,
    )

    with notifier_sessions() as session:
        rows = session.scalars(select(Delivery).where(Delivery.period == f"daily:{now.date()}"))
        today = {row.subscriber_id: row.id for row in rows}
    assert sent[:3] == [mine[:2], mine[2:], stale]
    assert sorted(today) == ids  # everyone is due today: no row for today yet
    assert [len(chunk) for chunk in sent[3:]] == [2, 2, 2, 1]
    assert sorted(i for chunk in sent[3:] for i in chunk) == sorted(today.values())
    assert (handed_out.batches, handed_out.deliveries) == (7, 11)
