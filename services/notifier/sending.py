"""Mail leaves here: a link mail to its one reader, or a batch of digests or of a campaign
against the ledger.

A batch reads its subscribers and the news once, builds each digest mail (``emails.py``) and
hands it to the sender (``senders.py``) with the ledger's mark as the step before its last
line (``ledger.py``). A mail server that cannot be reached stops the batch, the rest staying
claimed for the retry; one address's failure never does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from services.notifier import digests, emails, ledger, senders, subscriptions
from services.notifier.models import Campaign, Delivery, Subscriber
from shared.db import make_session_factory, session_scope
from shared.logs import get_logger

log = get_logger(__name__)


def send_link_mail(
    sessions: sessionmaker[Session], sender: senders.Sender, email: emails.Email
) -> bool:
    """Whether the server took it. An address the server refuses for good is marked bounced;
    a temporary failure is raised for the caller to retry."""
    try:
        sender.send(email.return_path, email.recipient, email.data)
    except senders.PermanentFailure as error:
        with session_scope(sessions) as session:
            subscriber = session.get(Subscriber, email.subscriber_id, with_for_update=True)
            if subscriber.status != subscriptions.ERASED:  # erased meanwhile: it stays so
                subscriber.status = "bounced"
        log.info(
            "link_mail_bounced",
            kind=email.kind,
            subscriber_id=email.subscriber_id,
            error=str(error),
        )
        return False
    return True


@dataclass
class BatchOutcome:
    sent: int = 0
    empty: int = 0
    failed: int = 0
    skipped: int = 0
    retry: list[int] = field(default_factory=list)  # deliveries to try again later


def send_batch(
    engine: Engine,
    sender: senders.Sender,
    delivery_ids: list[int],
    settings: emails.MailSettings,
    now: datetime,
    pace: Callable[[], None] | None = None,
) -> BatchOutcome:
    """Send the digests of these ledger rows (those still claimed), each at most once."""
    outcome = BatchOutcome()
    sessions = make_session_factory(engine)
    with sessions() as session:
        rows = session.execute(
            select(Delivery, Subscriber)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == "claimed")
            .where(Delivery.campaign_id.is_(None))
            .order_by(Delivery.id)
        ).all()
        if not rows:
            return outcome
        last = digests.last_digests(session, [subscriber.id for _d, subscriber in rows])
        since = {s.id: digests.since_of(s, last.get(s.id)) for _d, s in rows}
        followed = {city for _d, subscriber in rows for city in subscriber.city_ids}
        pool = digests.StoryPool(session, min(since.values()), now, followed)
        session.expunge_all()
    with ledger.BatchMarks(engine, now) as marks:
        for delivery, subscriber in rows:
            if subscriber.status != "confirmed":
                marks.finish(delivery.id, "skipped")
                outcome.skipped += 1
                continue
            news = pool.digest_for(subscriber.city_ids, since[subscriber.id])
            if news.count == 0:
                marks.finish(delivery.id, "empty")
                outcome.empty += 1
                continue
            message = emails.digest_message(news, subscriber, delivery.message_id, settings)
            if pace is not None:
                pace()
            marked = functools.partial(marks.mark_sent, delivery.id, news.count)
            if not _send_marked(
                sender,
                sessions,
                marks,
                outcome,
                delivery,
                subscriber,
                message.data,
                settings.return_path(subscriber.id, "digest", delivery.id),
                marked,
            ):
                outcome.retry += [d.id for d, _s in rows if d.id >= delivery.id]
                break
    return outcome


def _send_marked(
    sender: senders.Sender,
    sessions: sessionmaker[Session],
    marks: ledger.BatchMarks,
    outcome: BatchOutcome,
    delivery: Delivery,
    subscriber: Subscriber,
    data: bytes,
    return_path: str,
    mark: senders.BeforeLastLine,
) -> bool:
    """One ledger row's message, marked sent just before its last line; False when the mail
    server cannot be reached: not this subscriber's fault, the batch stops and is retried
    whole (a row marked sent stays sent: its last line may have been accepted)."""
    try:
        sender.send(return_path, subscriber.email, data, before_last_line=mark)
        outcome.sent += 1
        marks.accepted(delivery.id)
    except ledger.AlreadyTaken:
        outcome.skipped += 1
    except senders.PermanentFailure as error:
        ledger.record_failure(sessions, delivery.id, subscriber.id, str(error), permanent=True)
        outcome.failed += 1
    except senders.ServerUnavailable:
        return False
    except senders.TemporaryFailure as error:
        ledger.record_failure(sessions, delivery.id, subscriber.id, str(error), permanent=False)
        outcome.retry.append(delivery.id)
    return True


def send_campaign_batch(
    engine: Engine,
    sender: senders.Sender,
    campaign_id: int,
    delivery_ids: list[int],
    settings: emails.MailSettings,
    now: datetime,
    pace: Callable[[], None] | None = None,
) -> BatchOutcome:
    """Send a campaign to these ledger rows (those still claimed), each at most once, as a
    digest batch does: the same marks, the same failures, the same pace."""
    outcome = BatchOutcome()
    sessions = make_session_factory(engine)
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        rows = session.execute(
            select(Delivery, Subscriber)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == "claimed")
            .where(Delivery.campaign_id == campaign_id)
            .order_by(Delivery.id)
        ).all()
        session.expunge_all()
    if campaign is None or not rows:
        return outcome
    with ledger.BatchMarks(engine, now) as marks:
        for delivery, subscriber in rows:
            if subscriber.status != "confirmed":  # unsubscribed since it was claimed
                marks.finish(delivery.id, "skipped")
                outcome.skipped += 1
                continue
            data = emails.campaign_message(campaign, subscriber, delivery.message_id, settings)
            if pace is not None:
                pace()
            marked = functools.partial(marks.mark_sent, delivery.id, 0)
            return_path = settings.return_path(subscriber.id, "campaign", delivery.id)
            if not _send_marked(
                sender, sessions, marks, outcome, delivery, subscriber, data, return_path, marked
            ):
                outcome.retry += [d.id for d, _s in rows if d.id >= delivery.id]
                break
    return outcome


@dataclass
class ResendOutcome:
    resent: int = 0
    skipped: int = 0  # re-sent by another hand at once, or nothing to send any more
    failed: int = 0  # refused by the server: for good (bounced) or for now (left to retry)


def resend_unconfirmed(
    engine: Engine,
    sender: senders.Sender,
    period: str,
    settings: emails.MailSettings,
    now: datetime,
) -> ResendOutcome:
    """Staff's re-send of ``period``'s digests marked sent and never acknowledged
    (``ledger.unconfirmed``): each with its original Message-ID and content (the digest cut
    again at its ``sent_at``, ``digests.digest_at``), at most once, whoever presses at the
    same time: its mark is conditional like the first send's (``ledger.BatchMarks``). A
    subscriber no longer confirmed, or a digest whose stories were all withdrawn since, gets
    nothing. A mail server that cannot be reached is raised (nothing marked stays to do)."""
    outcome = ResendOutcome()
    sessions = make_session_factory(engine)
    with sessions() as session:
        due = []
        for row in ledger.unconfirmed(session, now, period):
            subscriber = session.get(Subscriber, row.subscriber_id)
            news = digests.digest_at(session, subscriber, row.sent_at)
            due.append((row, subscriber, news))
        session.expunge_all()
    with ledger.BatchMarks(engine, now) as marks:
        for row, subscriber, news in due:
            if subscriber.status != "confirmed" or news.count == 0:
                outcome.skipped += 1
                continue
            message = emails.digest_message(news, subscriber, row.message_id, settings)
            try:
                sender.send(
                    settings.return_path(subscriber.id, "digest", row.delivery_id),
                    subscriber.email,
                    message.data,
                    before_last_line=functools.partial(marks.mark_resent, row.delivery_id),
                )
                outcome.resent += 1
                marks.accepted(row.delivery_id)
            except ledger.AlreadyTaken:
                outcome.skipped += 1
            except senders.ServerUnavailable:
                raise
            except senders.PermanentFailure as error:
                ledger.record_failure(
                    sessions, row.delivery_id, subscriber.id, str(error), permanent=True
                )
                outcome.failed += 1
            except senders.TemporaryFailure as error:
                ledger.undo_resend(sessions, row.delivery_id, str(error))
                outcome.failed += 1
    log.info("digests_resent", period=period, **vars(outcome))
    return outcome
