"""The notifier's tasks: thin wrappers around subscriptions, digests and deliveries; mail goes
out only after the change that asked for it has committed."""

from __future__ import annotations

import functools

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.notifier import deliveries, digests, mail, subscriptions
from services.notifier.event_handlers import remember_cities
from services.notifier.models import FREQUENCIES, Delivery, Subscriber
from services.notifier.tokens import Tokens
from services.notifier.worker import app, runtime
from shared.db import session_scope
from shared.errors import InvalidInput, NotFound, TransientError
from shared.events import utcnow
from shared.logs import get_logger

log = get_logger(__name__)
SEND_TASK = "notifier.send_digests"


@functools.cache
def tokens() -> Tokens:
    return Tokens(runtime.settings.mail_token_key(), runtime.settings.legacy_link_key())


def mail_settings() -> deliveries.MailSettings:
    settings = runtime.settings
    return deliveries.MailSettings(settings.mail_from, settings.public_base_url, tokens())


def smtp_sender() -> mail.SmtpSender:
    return mail.SmtpSender(runtime.settings.smtp_url, signer=_dkim_signer())


@functools.cache
def _dkim_signer() -> mail.DkimSigner | None:
    return runtime.settings.dkim_signer()


@app.task(name="notifier.create_subscription", shared=False)
def subscribe(email: str, frequency: str = "weekly", city_ids: list[int] | None = None) -> dict:
    with session_scope(runtime.sessions) as session:
        to_mail = subscriptions.subscribe(session, email, frequency, city_ids, utcnow())
    if to_mail is not None:
        _send_after_commit(to_mail)
        request_city_names(list(to_mail.city_ids))
    # The same answer for a new, a pending and a confirmed address.
    return {"status": "pending"}


@app.task(name="notifier.request_preferences_link", shared=False)
def request_preferences_link(email: str) -> dict:
    with session_scope(runtime.sessions) as session:
        to_mail = subscriptions.request_preferences_link(session, email, utcnow())
    if to_mail is not None:
        _send_after_commit(to_mail)
    # The same answer whether the address is subscribed or not.
    return {"status": "pending"}


def _send_after_commit(to_mail: subscriptions.LinkMail) -> None:
    if to_mail.kind == "confirm":
        app.send_task("notifier.send_confirmation", args=[to_mail.subscriber_id])
    else:
        app.send_task(
            "notifier.send_link_mail",
            args=[to_mail.kind, to_mail.subscriber_id, list(to_mail.city_ids)],
        )


@app.task(name="notifier.send_confirmation", shared=False)
def send_confirmation(subscriber_id: int) -> dict:
    return send_link_mail("confirm", subscriber_id)


# Who each kind of link mail goes to: a confirmation to a pending subscriber, the others to a
# confirmed one (a state that changed since it was asked for sends nothing).
LINK_MAIL_STATUS = {"confirm": "pending", "follow": "confirmed", "preferences": "confirmed"}


@app.task(name="notifier.send_link_mail", shared=False)
def send_link_mail(kind: str, subscriber_id: int, city_ids: list[int] | None = None) -> dict:
    if kind not in LINK_MAIL_STATUS:
        raise InvalidInput(f"kind must be one of {', '.join(LINK_MAIL_STATUS)}")
    settings = mail_settings()
    base = settings.public_base_url
    with runtime.read_sessions() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.status != LINK_MAIL_STATUS[kind]:
            return {"sent": False}
        email, frequency = subscriber.email, subscriber.frequency
        preferences = tokens().make("preferences", subscriber_id, email)
        context = {"frequency": frequency, "preferences_url": f"{base}/preferences/{preferences}"}
        # Confirmation mails are numbered (only the latest link confirms); other link mails
        # by the second they were made.
        number = subscriber.confirmations if kind == "confirm" else int(utcnow().timestamp())
        return_path = settings.return_path(subscriber_id, kind, number)
        if kind == "confirm":
            token = subscriptions.confirmation_token(tokens(), subscriber)
            context = {
                "frequency": frequency,
                "confirm_url": f"{base}/subscriptions/confirm/{token}",
            }
        elif kind == "follow":
            token = tokens().make("follow", subscriber_id, email, city_ids=city_ids or [])
            context |= {
                "follow_url": f"{base}/follow/{token}" if city_ids else None,
                "cities": subscriptions.city_names(session, city_ids or []),
            }
    unsubscribe = tokens().make("unsubscribe", subscriber_id, email)
    data = mail.build_message(
        sender=settings.sender,
        recipient=email,
        rendered=mail.render(kind, **context),
        message_id=f"<{kind}.{subscriber_id}.{utcnow():%Y%m%d%H%M%S}@{settings.domain}>",
        unsubscribe_url=f"{base}/unsubscribe/{unsubscribe}",
        unsubscribe_mailto=settings.mailto(unsubscribe),
        headers=mail.ListHeaders(mail.feedback_id(kind, frequency)),
    )
    try:
        with smtp_sender() as sender:
            sender.send(return_path, email, data)
    except mail.TemporaryFailure as error:
        raise TransientError(str(error)) from None
    except mail.PermanentFailure as error:
        with session_scope(runtime.sessions) as session:
            session.get(Subscriber, subscriber_id).status = "bounced"
        log.info("link_mail_bounced", kind=kind, subscriber_id=subscriber_id, error=str(error))
        return {"sent": False}
    return {"sent": True}


@app.task(name="notifier.check_confirmation_link", shared=False)
def check_confirmation_link(token: str) -> dict:
    """Who a confirmation link is for, and whether it is confirmed yet: the page asks before
    it acts (mail scanners follow links)."""
    with runtime.read_sessions() as session:
        return subscriptions.public_view(subscriptions.confirming(session, tokens(), token))


@app.task(name="notifier.confirm_subscription", shared=False)
def confirm_subscription(token: str) -> dict:
    with session_scope(runtime.sessions) as session:
        subscriber, confirmed_now = subscriptions.confirm(session, tokens(), token, utcnow())
        return {**_with_links(subscriber), "confirmed_now": confirmed_now}


@app.task(name="notifier.cancel_subscription", shared=False)
def unsubscribe(token: str) -> dict:
    with session_scope(runtime.sessions) as session:
        return subscriptions.public_view(
            subscriptions.unsubscribe(session, tokens(), token, utcnow())
        )


@app.task(name="notifier.unsubscribe_by_mail", shared=False)
def unsubscribe_by_mail(token: str) -> dict:
    """A mail to the unsubscribe mailbox (``mailbox.py``), its token's signature checked there.
    Nobody waits for the answer: a token that no longer fits is logged, without the token."""
    try:
        with session_scope(runtime.sessions) as session:
            subscriber_id = subscriptions.unsubscribe(session, tokens(), token, utcnow()).id
    except InvalidInput as error:
        log.info("mail_unsubscribe_refused", reason=error.message)
        return {"unsubscribed": False}
    log.info("unsubscribed_by_mail", subscriber_id=subscriber_id)
    return {"unsubscribed": True}


@app.task(name="notifier.record_bounce", shared=False)
def record_bounce(bounce_id: str, kind: str, reason: str) -> dict:
    """A bounce or complaint the mailbox received (``mailbox.py``), its return path's id
    checked there and again here. Logged without the id or the address."""
    try:
        with session_scope(runtime.sessions) as session:
            subscriber = subscriptions.record_bounce(
                session, tokens(), bounce_id, kind, reason, utcnow()
            )
            outcome = None if subscriber is None else (subscriber.id, subscriber.status)
    except IntegrityError:
        outcome = None  # another copy of this task recorded it first
    if outcome is None:
        log.info("bounce_not_recorded", kind=kind)
        return {"recorded": False}
    log.info("bounce_recorded", kind=kind, subscriber_id=outcome[0], status=outcome[1])
    return {"recorded": True, "status": outcome[1]}


@app.task(name="notifier.check_unsubscribe_link", shared=False)
def check_unsubscribe_link(token: str) -> dict:
    """Who an unsubscribe link is for (the page asks before it acts)."""
    with runtime.read_sessions() as session:
        return subscriptions.public_view(
            subscriptions.from_token(session, tokens(), "unsubscribe", token)
        )


@app.task(name="notifier.check_follow_link", shared=False)
def check_follow_link(token: str) -> dict:
    """Who a follow link is for and the cities it adds (the page asks before it acts)."""
    with runtime.read_sessions() as session:
        subscriber, city_ids = subscriptions.follow_link(session, tokens(), token)
        return {**subscriptions.public_view(subscriber), "adds": city_ids}


@app.task(name="notifier.follow_cities", shared=False)
def follow_cities(token: str) -> dict:
    with session_scope(runtime.sessions) as session:
        subscriber, city_ids = subscriptions.follow(session, tokens(), token)
        answer = {**_with_links(subscriber), "adds": city_ids}
    request_city_names(answer["city_ids"])
    return answer


@app.task(name="notifier.get_preferences", shared=False)
def get_preferences(token: str) -> dict:
    with runtime.read_sessions() as session:
        return _with_links(subscriptions.from_token(session, tokens(), "preferences", token))


@app.task(name="notifier.update_preferences", shared=False)
def update_preferences(token: str, frequency: str, city_ids: list[int] | None = None) -> dict:
    with session_scope(runtime.sessions) as session:
        subscriber = subscriptions.update_preferences(session, tokens(), token, frequency, city_ids)
        answer = _with_links(subscriber)
    request_city_names(answer["city_ids"])
    return answer


def request_city_names(city_ids: list[int]) -> None:
    """Ask the directory for the names of followed cities the notifier does not know yet
    (digests name them); the answer comes back as ``notifier.store_city_names``."""
    if not city_ids:
        return
    with runtime.read_sessions() as session:
        unknown = subscriptions.unknown_cities(session, city_ids)
    if unknown:
        app.send_task(
            "directory.get_city_names",
            args=[unknown],
            link=app.signature("notifier.store_city_names"),
        )


@app.task(name="notifier.store_city_names", shared=False)
def store_city_names(answer: dict) -> dict:
    with session_scope(runtime.sessions) as session:
        remember_cities(session, answer["cities"])
    return {"stored": len(answer["cities"])}


def _with_links(subscriber: Subscriber) -> dict:
    """The page behind a signed link may link on to the subscriber's other pages."""
    return {
        **subscriptions.public_view(subscriber),
        "preferences_token": tokens().make("preferences", subscriber.id, subscriber.email),
        "unsubscribe_token": tokens().make("unsubscribe", subscriber.id, subscriber.email),
    }


@app.task(name="notifier.schedule_digests", shared=False, bind=True)
def schedule_digests(task, frequency: str | None = None, every: bool = False) -> dict:
    """Claim the due subscribers' ledger rows and hand them out in batches. ``every`` (staff's
    "send now") treats every confirmed subscriber of ``frequency`` as due."""
    if frequency is not None and frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}")
    now = utcnow()
    batch = runtime.settings.digest_batch
    batches = deliveries_handed_out = 0

    def hand_out(delivery_ids: list[int]) -> None:
        # Each batch goes out as soon as it is claimed: sending starts while claiming goes on.
        nonlocal batches, deliveries_handed_out
        if delivery_ids:
            app.send_task(SEND_TASK, args=[delivery_ids])
            batches, deliveries_handed_out = batches + 1, deliveries_handed_out + len(delivery_ids)

    with runtime.read_sessions() as session:
        again = deliveries.claims_of(session, task.request.id)
        stale = sorted(set(deliveries.stale_claims(session, now)) - set(again))
    for rows in (again, stale):
        for start in range(0, len(rows), batch):
            hand_out(rows[start : start + batch])
    for each in [frequency] if frequency else FREQUENCIES:
        period = digests.period_of(each, now)
        with runtime.read_sessions() as session:
            due = digests.due_subscribers(session, each, now, every=every)
        for start in range(0, len(due), batch):
            with session_scope(runtime.sessions) as session:
                claimed = deliveries.claim(
                    session,
                    due[start : start + batch],
                    period,
                    now,
                    mail_settings().domain,
                    claimant=task.request.id,
                )
            hand_out(claimed)
    return {"batches": batches, "deliveries": deliveries_handed_out}


@app.task(name="notifier.request_digests", shared=False)
def request_digests(frequency: str) -> dict:
    """Staff's "send now": answered at once, the claiming and sending run in the background."""
    if frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}")
    app.send_task("notifier.schedule_digests", args=[frequency], kwargs={"every": True})
    return {"status": "scheduled", "frequency": frequency}


# A mail server that is down is retried for as long as it is down, as mail servers do: the
# waits are capped below the visibility timeout (shared.celery_app), so a fixed number of
# retries would give up after minutes. Rows no task finishes are handed out again anyway
# (deliveries.stale_claims).
@app.task(name=SEND_TASK, shared=False, max_retries=None)
def send_digests(delivery_ids: list[int]) -> dict:
    pace = deliveries.Pace(runtime.redis, runtime.settings.mail_rate)
    with smtp_sender() as sender:
        outcome = deliveries.send_batch(
            runtime.engine, sender, delivery_ids, mail_settings(), utcnow(), pace
        )
    log.info("digests_sent", sent=outcome.sent, empty=outcome.empty, failed=outcome.failed,
             retry=len(outcome.retry))  # fmt: skip
    if outcome.retry:
        # Only the rows still claimed are sent again; the rest are done.
        raise TransientError(f"{len(outcome.retry)} digests to retry")
    return {"sent": outcome.sent, "empty": outcome.empty, "failed": outcome.failed}


@app.task(name="notifier.preview_digest", shared=False)
def preview_digest(email: str) -> dict:
    """The digest a subscriber would get now, rendered, not sent."""
    address = subscriptions.normalize_address(email)
    now = utcnow()
    with runtime.read_sessions() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
        if subscriber is None:
            raise NotFound("no subscriber with this address")
        since = digests.since_of(
            subscriber, digests.last_digests(session, [subscriber.id]).get(subscriber.id)
        )
        pool = digests.StoryPool(session, since, now, subscriber.city_ids)
        digest = pool.digest_for(subscriber.city_ids, since)
        delivery = Delivery(
            message_id=deliveries.message_id(
                subscriber.id, digests.period_of(subscriber.frequency, now), mail_settings().domain
            )
        )
        template = deliveries.template_for(digest, subscriber, mail_settings())
        message = deliveries.personalize(template, subscriber, delivery, mail_settings())
    return {
        "email": address,
        "status": subscriber.status,
        "stories": digest.count,
        "subject": template.rendered.subject,
        "message": message.decode("utf-8", "replace"),
    }


@app.task(name="notifier.subscriber_stats", shared=False)
def subscriber_stats() -> dict:
    with runtime.read_sessions() as session:
        stats = subscriptions.stats(session)
        last = session.scalar(select(func.max(Delivery.sent_at)))
        by_status = dict(
            session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
        last_run = deliveries.last_run(session)
        unaccepted = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == "sent", Delivery.accepted_at.is_(None))
        )
    return {**stats, "last_digest_sent_at": last.isoformat() if last else None,
            "last_digest_run": last_run, "deliveries": by_status,
            "sent_not_acknowledged": unaccepted}  # fmt: skip
