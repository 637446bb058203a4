"""What staff see of the notifier (``sistercities notifier stats``, the admin API and the
dashboard): subscribers by status and frequency, the ledger by status, the last digest run,
and how many digests were marked sent without the server's 250 heard (the ones a crash may
have lost, ``ledger.py``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.notifier.models import FREQUENCIES, Delivery, Subscriber

DIGESTS = Delivery.campaign_id.is_(None)  # a campaign's rows are counted on its own page


def subscriber_stats(session: Session) -> dict:
    last = session.scalar(select(func.max(Delivery.sent_at)).where(DIGESTS))
    by_status = dict(
        session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    )
    unaccepted = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.status == "sent", Delivery.accepted_at.is_(None))
    )
    return {
        **subscribers(session),
        "last_digest_sent_at": last.isoformat() if last else None,
        "last_digest_run": last_run(session),
        "deliveries": by_status,
        "sent_not_acknowledged": unaccepted,
    }


def subscribers(session: Session) -> dict:
    counts = session.execute(
        select(Subscriber.status, Subscriber.frequency, func.count()).group_by(
            Subscriber.status, Subscriber.frequency
        )
    ).all()
    by_status: dict[str, int] = {}
    confirmed_by_frequency: dict[str, int] = dict.fromkeys(FREQUENCIES, 0)
    for status, frequency, count in counts:
        by_status[status] = by_status.get(status, 0) + count
        if status == "confirmed":
            confirmed_by_frequency[frequency] = count
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "confirmed_by_frequency": confirmed_by_frequency,
    }


def last_run(session: Session) -> dict | None:
    """The newest digest period anyone was claimed for (``weekly:2026-W48``): when its first
    row was claimed, when its last message was marked sent, and its rows by status."""
    period = session.scalar(
        select(Delivery.period).where(DIGESTS).order_by(Delivery.id.desc()).limit(1)
    )
    if period is None:
        return None
    started, last_sent = session.execute(
        select(func.min(Delivery.created_at), func.max(Delivery.sent_at)).where(
            Delivery.period == period
        )
    ).one()
    by_status = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.period == period)
        .group_by(Delivery.status)
    ).all()
    return {
        "period": period,
        "started_at": started.isoformat(),
        "last_sent_at": last_sent.isoformat() if last_sent else None,
        "deliveries": dict(by_status),
    }
