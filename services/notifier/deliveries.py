"""Sending digests exactly once per subscriber and period.

The ledger (``Delivery``) has one row per (subscriber, period), claimed before anything is
sent. A message is marked sent in the database just before its last line (the lone ".") goes
to the SMTP server: the server accepts a message only on that line, and drops it if the
connection dies first. So:

- a worker killed before the mark: the row is still "claimed", the server dropped the half
  message, and the retry sends it: nothing lost, nothing twice;
- a worker killed after the mark: the row says "sent" and the message goes out with the "."
  the kernel already holds or is about to get. The one window left is between the commit
  becoming durable and the "." being written (the commit's reply and a little Python, about
  a tenth of a millisecond): a kill there loses that one message (one per open connection at
  most), and never sends anything twice. Such a row is "sent" without ``accepted_at`` (the
  server's 250 is recorded with the next mark), so the loss is named, not silent;
- two workers holding the same row (a redelivered task): only one mark succeeds (it is
  conditional on "claimed"); the other abandons its message mid-DATA.

Message-IDs are deterministic per (subscriber, period).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.notifier import digests, mail
from services.notifier.models import Delivery, Subscriber
from services.notifier.subscriptions import SOFT_FAILURE_LIMIT
from services.notifier.tokens import Tokens
from shared.db import make_session_factory, session_scope
from shared.logs import get_logger

log = get_logger(__name__)

STALE_CLAIM = timedelta(minutes=30)
UNSUBSCRIBE_MARK = "%%unsubscribe_url%%"
PREFERENCES_MARK = "%%preferences_url%%"


class AlreadyTaken(Exception):
    """Another worker marked this delivery first."""


@dataclass
class MailSettings:
    sender: str
    public_base_url: str
    tokens: Tokens

    @cached_property
    def domain(self) -> str:
        return mail.envelope_address(self.sender).rsplit("@", 1)[-1]

    @cached_property
    def unsubscribe_address(self) -> str:
        return mail.unsubscribe_address(self.sender)

    def mailto(self, unsubscribe_token: str) -> str:
        """The subscriber's own mailto: the unsubscribe mailbox reads the token."""
        return mail.unsubscribe_mailto(self.unsubscribe_address, unsubscribe_token)

    def return_path(self, subscriber_id: int, message_kind: str, message_number: int) -> str:
        """The envelope sender of one message (VERP): its bounces come back to the mailbox
        with a signed id that names the subscriber and the message (``bounces.py``)."""
        named = (subscriber_id, message_kind, message_number)
        return self.tokens.bounce_ids.return_path(self.domain, *named)


@dataclass
class BatchOutcome:
    sent: int = 0
    empty: int = 0
    failed: int = 0
    skipped: int = 0
    retry: list[int] = field(default_factory=list)  # deliveries to try again later


def message_id(subscriber_id: int, period: str, domain: str) -> str:
    return f"<digest.{period.replace(':', '.')}.{subscriber_id}@{domain}>"


def claim(
    session: Session,
    subscriber_ids: list[int],
    period: str,
    now: datetime,
    domain: str,
    claimant: str | None = None,
) -> list[int]:
    """Ledger rows for these subscribers in this period (existing rows are left as they are);
    returns the ids of the rows still to be sent."""
    if subscriber_ids:
        rows = [
            {"subscriber_id": subscriber_id, "period": period, "status": "claimed",
             "message_id": message_id(subscriber_id, period, domain), "stories": 0,
             "attempts": 0, "created_at": now, "claimed_by": claimant}
            for subscriber_id in subscriber_ids
        ]  # fmt: skip
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(Delivery).on_conflict_do_nothing(), rows)
    return list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.period == period, Delivery.status == "claimed")
            .where(Delivery.subscriber_id.in_(subscriber_ids))
            .order_by(Delivery.id)
        )
    )


def claims_of(session: Session, claimant: str) -> list[int]:
    """Rows this hand-out claimed that are still claimed: a hand-out killed between claiming
    and its last send runs again (its message comes back) and sends them, instead of leaving
    them for ``stale_claims``. A row also in a batch already out is sent once all the same:
    the mark before each message's last line takes only a row still claimed."""
    query = select(Delivery.id).where(Delivery.status == "claimed", Delivery.claimed_by == claimant)
    return list(session.scalars(query.order_by(Delivery.id)))


def stale_claims(session: Session, now: datetime) -> list[int]:
    """Claimed rows no task finished: their task was lost or gave up retrying."""
    query = select(Delivery.id).where(
        Delivery.status == "claimed", Delivery.created_at < now - STALE_CLAIM
    )
    return list(session.scalars(query.order_by(Delivery.id)))


def last_run(session: Session) -> dict | None:
    """The newest digest period anyone was claimed for (``weekly:2026-W48``): when its first
    row was claimed, when its last message was marked sent, and its rows by status."""
    period = session.scalar(select(Delivery.period).order_by(Delivery.id.desc()).limit(1))
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


def send_batch(
    engine: Engine,
    sender: mail.SmtpSender,
    delivery_ids: list[int],
    settings: MailSettings,
    now: datetime,
    pace=None,
) -> BatchOutcome:
    """Send the digests of these ledger rows. A server that cannot be reached stops the batch
    (the rest stay claimed for the retry); one address's failure never does."""
    outcome = BatchOutcome()
    sessions = make_session_factory(engine)
    with sessions() as session:
        rows = session.execute(
            select(Delivery, Subscriber)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == "claimed")
            .order_by(Delivery.id)
        ).all()
        if not rows:
            return outcome
        last = digests.last_digests(session, [subscriber.id for _d, subscriber in rows])
        since = {s.id: digests.since_of(s, last.get(s.id)) for _d, s in rows}
        followed = {city for _d, subscriber in rows for city in subscriber.city_ids}
        pool = digests.StoryPool(session, min(since.values()), now, followed)
        session.expunge_all()
    # One connection for the batch's ledger writes (checking a pooled connection out and
    # pinging it for every row cost a fifth of the send), each write its own transaction.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as ledger:
        accepted: list[int] = []  # the server said 250; recorded with the next mark
        try:
            for delivery, subscriber in rows:
                if subscriber.status != "confirmed":
                    _finish(ledger, delivery.id, "skipped", now)
                    outcome.skipped += 1
                    continue
                digest = pool.digest_for(subscriber.city_ids, since[subscriber.id])
                if digest.count == 0:
                    _finish(ledger, delivery.id, "empty", now)
                    outcome.empty += 1
                    continue
                data = personalize(
                    template_for(digest, subscriber, settings), subscriber, delivery, settings
                )
                if pace is not None:
                    pace()
                try:
                    sender.send(
                        settings.return_path(subscriber.id, "digest", delivery.id),
                        subscriber.email,
                        data,
                        before_last_line=lambda d=delivery, n=digest.count: _mark_sent(
                            ledger, d.id, n, now, accepted
                        ),
                    )
                    outcome.sent += 1
                    accepted.append(delivery.id)
                except AlreadyTaken:
                    outcome.skipped += 1
                except mail.PermanentFailure as error:
                    _failed(sessions, delivery.id, subscriber.id, str(error), permanent=True)
                    outcome.failed += 1
                except mail.ServerUnavailable:
                    # Not this subscriber's fault: the batch stops and is retried whole. A row
                    # marked sent stays sent (its last line may have been accepted).
                    outcome.retry += [d.id for d, _s in rows if d.id >= delivery.id]
                    break
                except mail.TemporaryFailure as error:
                    _failed(sessions, delivery.id, subscriber.id, str(error), permanent=False)
                    outcome.retry.append(delivery.id)
        finally:
            # Also when the batch ends in an error (a deadlock between two copies of a
            # redelivered task, a lost database): the 250s already heard are facts to keep.
            if accepted:
                _record_accepted(ledger, accepted, now)
    return outcome


_templates: OrderedDict[tuple, mail.MessageTemplate] = OrderedDict()
_templates_lock = threading.Lock()
TEMPLATES_KEPT = 256


def template_for(
    digest: digests.Digest, subscriber: Subscriber, settings: MailSettings
) -> mail.MessageTemplate:
    """Each distinct digest is rendered and encoded once per process, whatever batch its
    subscribers fall in."""
    key = (tuple(story.post_id for story in digest.stories), digest.more,
           tuple(p.partnership_id for p in digest.partnerships), digest.cities,
           bool(subscriber.city_ids), subscriber.frequency, settings.public_base_url)  # fmt: skip
    with _templates_lock:
        if key in _templates:
            _templates.move_to_end(key)
            return _templates[key]
    template = render_digest(digest, subscriber, settings)
    with _templates_lock:
        _templates[key] = template
        while len(_templates) > TEMPLATES_KEPT:
            _templates.popitem(last=False)
    return template


def render_digest(
    digest: digests.Digest, subscriber: Subscriber, settings: MailSettings
) -> mail.MessageTemplate:
    rendered = mail.render(
        "digest",
        stories=digest.stories,
        more=digest.more,
        count=digest.story_count,
        partnerships=digest.partnerships,
        cities=_named(digest.cities),
        following=bool(subscriber.city_ids),
        frequency=subscriber.frequency,
        site_url=settings.public_base_url,
        unsubscribe_url=UNSUBSCRIBE_MARK,
        preferences_url=PREFERENCES_MARK,
    )
    headers = mail.ListHeaders(
        mail.feedback_id("digest", subscriber.frequency), mail.list_id(settings.sender)
    )
    return mail.MessageTemplate(
        settings.sender, rendered, (UNSUBSCRIBE_MARK, PREFERENCES_MARK), headers
    )


def _named(cities: tuple[str, ...]) -> str:
    """ "Lyon", "Lyon and Kyoto", "Lyon, Kyoto, Boston and 2 more"."""
    if len(cities) <= 2:
        return " and ".join(cities)
    if len(cities) == 3:
        return f"{cities[0]}, {cities[1]} and {cities[2]}"
    return f"{', '.join(cities[:3])} and {len(cities) - 3} more"


def personalize(
    template: mail.MessageTemplate,
    subscriber: Subscriber,
    delivery: Delivery,
    settings: MailSettings,
) -> bytes:
    """The digest rendered once for everyone who gets the same stories, with this
    subscriber's address, Message-ID and own links put in."""
    base, tokens = settings.public_base_url, settings.tokens
    token = tokens.make("unsubscribe", subscriber.id, subscriber.email)
    unsubscribe = f"{base}/unsubscribe/{token}"
    preferences = (
        f"{base}/preferences/{tokens.make('preferences', subscriber.id, subscriber.email)}"
    )
    mailto = settings.mailto(token)  # the same token: the mailbox unsubscribes its bearer
    links = {UNSUBSCRIBE_MARK: unsubscribe, PREFERENCES_MARK: preferences}
    if template.usable:
        header = mail.list_unsubscribe(unsubscribe, mailto)
        return template.fill(subscriber.email, delivery.message_id, header, links)

    def fill(text: str) -> str:  # the slow path, should a template ever split a mark
        for mark, url in links.items():
            text = text.replace(mark, url)
        return text

    rendered = template.rendered
    return mail.build_message(
        sender=settings.sender,
        recipient=subscriber.email,
        rendered=mail.Rendered(rendered.subject, fill(rendered.text), fill(rendered.html)),
        message_id=delivery.message_id,
        unsubscribe_url=unsubscribe,
        unsubscribe_mailto=mailto,
        headers=template.headers,
    )


_MARK_ACCEPTED = (
    update(Delivery)
    .where(Delivery.id.in_(bindparam("accepted", expanding=True)))
    .values(accepted_at=bindparam("now"))
)


def _mark_sent_statement():
    """One statement, so one round trip and one commit a message: this row marked sent (only
    if still claimed) and the previous message's 250 recorded. It returns the ids it changed."""
    this, now = bindparam("delivery"), bindparam("now", type_=Delivery.sent_at.type)
    mine, previous = Delivery.id == this, Delivery.id == bindparam("previous")
    return (
        update(Delivery)
        .where(or_(and_(mine, Delivery.status == "claimed"), previous))
        .values(
            status=case((mine, "sent"), else_=Delivery.status),
            sent_at=case((mine, now), else_=Delivery.sent_at),
            stories=case((mine, bindparam("stories")), else_=Delivery.stories),
            attempts=case((mine, Delivery.attempts + 1), else_=Delivery.attempts),
            accepted_at=case((previous, now), else_=Delivery.accepted_at),
        )
        .returning(Delivery.id)
    )


_MARK_SENT = _mark_sent_statement()


def _record_accepted(ledger: Connection, accepted: list[int], now: datetime) -> None:
    try:
        if ledger.in_transaction():
            ledger.rollback()  # after a failed statement the connection wants it first
        ledger.execute(_MARK_ACCEPTED, {"accepted": accepted, "now": now})
    except SQLAlchemyError as error:
        log.warning("accepted_not_recorded", deliveries=len(accepted), error=str(error))


def _mark_sent(
    ledger: Connection, delivery_id: int, stories: int, now: datetime, accepted: list[int]
) -> None:
    """The mark, durable when this returns (the ledger connection commits each statement).
    The previous message's 250 rides along: a row marked sent but never accepted is one a
    crash may have lost (at most one per connection), and it is named."""
    # One at most: each mark clears the list, and only a message sent after it adds to it.
    previous = accepted[-1] if accepted else None
    changed = (
        ledger.execute(
            _MARK_SENT,
            {"delivery": delivery_id, "previous": previous, "now": now, "stories": stories},
        )
        .scalars()
        .all()
    )
    accepted.clear()
    if delivery_id not in changed:
        raise AlreadyTaken(delivery_id)


def _finish(ledger: Connection, delivery_id: int, status: str, now: datetime) -> None:
    ledger.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "claimed")
        .values(status=status, sent_at=now)
    )


def _failed(
    sessions: sessionmaker[Session],
    delivery_id: int,
    subscriber_id: int,
    error: str,
    permanent: bool,
) -> None:
    """Undo the mark (the server refused the message after all) and count the failure."""
    with session_scope(sessions) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        delivery = session.get(Delivery, delivery_id)
        delivery.error = error[:1000]
        if permanent:
            delivery.status = "failed"
            subscriber.status = "bounced"
            return
        delivery.status = "claimed"
        subscriber.soft_failures += 1
        if subscriber.soft_failures >= SOFT_FAILURE_LIMIT:
            subscriber.status = "bounced"
            delivery.status = "failed"


class Pace:
    """A global rate for all notifier workers: at most ``rate`` messages in any one second,
    counted in Redis."""

    def __init__(self, redis_client, rate: float, key: str = "sistercities:notifier:rate:{}"):
        self.redis = redis_client
        self.rate = rate
        self.key = key

    def __call__(self) -> None:
        if self.rate <= 0:
            return
        while True:
            second = int(time.time())
            key = self.key.format(second)
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 5)
            count, _ = pipe.execute()
            if count <= self.rate:
                return
            time.sleep(max(0.0, second + 1 - time.time()))
