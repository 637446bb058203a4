"""The notifier's tasks: thin wrappers around subscriptions, digests, emails, the ledger and
sending; mail goes out only after the change that asked for it has committed."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.notifier import (
    campaigns,
    digests,
    emails,
    ledger,
    mail,
    mail_rate,
    senders,
    sending,
    stats,
    subscriber_admin,
    subscriptions,
)
from services.notifier.event_handlers import remember_cities
from services.notifier.models import FREQUENCIES, Base, Subscriber
from services.notifier.tokens import Tokens
from services.notifier.worker import app, runtime
from shared import audit
from shared.db import session_scope
from shared.errors import InvalidInput, NotFound, TransientError
from shared.events import utcnow
from shared.logs import get_logger

log = get_logger(__name__)
SEND_TASK = "notifier.send_digests"
CAMPAIGN_HAND_OUT = "notifier.send_campaign"
CAMPAIGN_BATCH = "notifier.send_campaign_batch"


@functools.cache
def tokens() -> Tokens:
    return Tokens(runtime.settings.mail_token_key(), runtime.settings.legacy_link_key())


def mail_settings() -> emails.MailSettings:
    settings = runtime.settings
    return emails.MailSettings(settings.mail_from, settings.public_base_url, tokens())


def mail_sender() -> senders.Sender:
    """A sender of ``MAIL_BACKEND``'s kind, for one task's mail."""
    settings = runtime.settings
    return senders.open_sender(
        settings.mail_backend,
        smtp_url=settings.smtp_url,
        directory=settings.mail_file_dir,
        signer=_dkim_signer(),
    )


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


@app.task(name="notifier.send_link_mail", shared=False)
def send_link_mail(kind: str, subscriber_id: int, city_ids: list[int] | None = None) -> dict:
    if kind not in emails.LINK_MAIL_STATUS:
        raise InvalidInput(f"kind must be one of {', '.join(emails.LINK_MAIL_STATUS)}")
    with runtime.read_sessions() as session:
        email = emails.link_mail(
            session, kind, subscriber_id, city_ids or [], mail_settings(), utcnow()
        )
    if email is None:
        return {"sent": False}
    try:
        with mail_sender() as sender:
            return {"sent": sending.send_link_mail(runtime.sessions, sender, email)}
    except senders.TemporaryFailure as error:
        raise TransientError(str(error)) from None


@app.task(name="notifier.send_sign_in_link", shared=False)
def send_sign_in_link(email: str, name: str, url: str, minutes: int) -> dict:
    """A staff member's one-time sign-in link, asked for by the staff service (which keeps
    the account; this service only knows how to mail)."""
    return _send_notice(emails.staff_sign_in(email, name, url, minutes, mail_settings()))


def _send_notice(message: emails.Email) -> dict:
    """A mail to one staff member (a sign-in link, a campaign's test copy): retried while
    the server cannot take it; an address it refuses for good is logged, not retried."""
    try:
        with mail_sender() as sender:
            sender.send(message.return_path, message.recipient, message.data)
    except senders.TemporaryFailure as error:
        raise TransientError(str(error)) from None
    except senders.PermanentFailure as error:
        log.warning("notice_refused", kind=message.kind, error=str(error))
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


@app.task(name="notifier.follow_now", shared=False)
def follow_now(token: str, email: str, city_ids: list[int]) -> dict:
    """``subscriptions.follow_now``: ``added`` false sends the site the usual way."""
    with session_scope(runtime.sessions) as session:
        done = subscriptions.follow_now(session, tokens(), token, email, city_ids)
        if done is None:
            return {"added": False}
        answer = {**_with_links(done[0]), "adds": done[1], "added": True}
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
    handed_out = ledger.hand_out(
        runtime.sessions,
        runtime.read_sessions,
        [frequency] if frequency else list(FREQUENCIES),
        utcnow(),
        batch=runtime.settings.digest_batch,
        domain=mail_settings().domain,
        claimant=task.request.id,
        every=every,
        send=lambda delivery_ids: app.send_task(SEND_TASK, args=[delivery_ids]),
    )
    return {"batches": handed_out.batches, "deliveries": handed_out.deliveries}


@app.task(name="notifier.request_digests", shared=False)
def request_digests(frequency: str) -> dict:
    """Staff's "send now": answered at once, the claiming and sending run in the background."""
    record_send_request(frequency)
    app.send_task("notifier.schedule_digests", args=[frequency], kwargs={"every": True})
    return {"status": "scheduled", "frequency": frequency}


def record_send_request(frequency: str) -> None:
    """Staff's "send now" on record (the API's and the command line's)."""
    if frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}")
    with session_scope(runtime.sessions) as session:
        summary = {"frequency": frequency, "period": digests.period_of(frequency, utcnow())}
        audit.record(session, Base.metadata, "digests.send_requested", "digest", frequency, summary)


# A mail server that is down is retried for as long as it is down, as mail servers do: the
# waits are capped below the visibility timeout (shared.celery_app), so a fixed number of
# retries would give up after minutes. Rows no task finishes are handed out again anyway
# (ledger.stale_claims).
@app.task(name=SEND_TASK, shared=False, max_retries=None)
def send_digests(delivery_ids: list[int]) -> dict:
    pace = mail_rate.Pace(runtime.redis, runtime.settings.mail_rate)
    with mail_sender() as sender:
        outcome = sending.send_batch(
            runtime.engine, sender, delivery_ids, mail_settings(), utcnow(), pace
        )
    counts = {"sent": outcome.sent, "empty": outcome.empty, "failed": outcome.failed}
    log.info("digests_sent", **counts, retry=len(outcome.retry))
    if outcome.retry:
        # Only the rows still claimed are sent again; the rest are done.
        raise TransientError(f"{len(outcome.retry)} digests to retry")
    return counts


@app.task(name="notifier.list_unconfirmed_digests", shared=False)
def list_unconfirmed_digests(period: str | None = None) -> dict:
    """Digests marked sent whose 250 was never recorded (``ledger.unconfirmed``), by period:
    what a crash at a message's last line may have lost, for staff to re-send or not."""
    if period is not None:
        digests.check_period(period)
    with runtime.read_sessions() as session:
        rows = ledger.unconfirmed(session, utcnow(), period)
    periods: dict[str, list[dict]] = {}
    for row in rows:
        periods.setdefault(row.period, []).append(
            {
                "id": row.delivery_id,
                "subscriber_id": row.subscriber_id,
                "message_id": row.message_id,
                "sent_at": row.sent_at.isoformat(),
            }
        )
    return {
        "total": len(rows),
        "settling_minutes": int(ledger.SETTLING.total_seconds() // 60),
        "periods": [
            {"period": period, "count": len(deliveries), "deliveries": deliveries}
            for period, deliveries in periods.items()
        ],
    }


@app.task(name="notifier.resend_unconfirmed_digests", shared=False)
def resend_unconfirmed_digests(period: str) -> dict:
    """Staff's re-send of ``period``'s unconfirmed digests (``sending.resend_unconfirmed``):
    each once at most, with its original Message-ID. Safe to run twice or twice at once."""
    digests.check_period(period)
    try:
        with mail_sender() as sender:
            outcome = sending.resend_unconfirmed(
                runtime.engine, sender, period, mail_settings(), utcnow()
            )
    except senders.ServerUnavailable as error:
        raise TransientError(str(error)) from None
    return {"period": period, **vars(outcome)}


@app.task(name="notifier.preview_digest", shared=False)
def preview_digest(email: str) -> dict:
    """The digest a subscriber would get now, built as it would be sent, not sent."""
    address = subscriptions.normalize_address(email)
    with runtime.read_sessions() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
        if subscriber is None:
            raise NotFound("no subscriber with this address")
        news, message = emails.digest_preview(session, subscriber, mail_settings(), utcnow())
        status = subscriber.status
    return {
        "email": address,
        "status": status,
        "stories": news.count,
        "subject": message.subject,
        "message": message.data.decode("utf-8", "replace"),
    }


@app.task(name="notifier.subscriber_stats", shared=False)
def subscriber_stats() -> dict:
    with runtime.read_sessions() as session:
        return stats.subscriber_stats(session)


# --- staff's work on subscribers (subscriber_admin.py; the gateway lets admins only) --------


@app.task(name="notifier.find_subscribers", shared=False)
def find_subscribers(q: str | None = None, before_id: int | None = None, limit: int = 50) -> dict:
    with runtime.read_sessions() as session:
        return subscriber_admin.find(session, q, before_id, limit)


@app.task(name="notifier.get_subscriber", shared=False)
def get_subscriber(subscriber_id: int) -> dict:
    with runtime.read_sessions() as session:
        return subscriber_admin.detail(session, subscriber_id)


@app.task(name="notifier.resend_confirmation", shared=False)
def resend_confirmation(subscriber_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        to_mail = subscriber_admin.resend_confirmation(session, subscriber_id, utcnow())
    _send_after_commit(to_mail)
    return get_subscriber(subscriber_id)


@app.task(name="notifier.unsubscribe_subscriber", shared=False)
def unsubscribe_subscriber(subscriber_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        subscriber_admin.unsubscribe(session, subscriber_id, utcnow())
    return get_subscriber(subscriber_id)


@app.task(name="notifier.erase_subscriber", shared=False)
def erase_subscriber(subscriber_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        return subscriber_admin.erase(session, subscriber_id, utcnow())


@app.task(name="notifier.export_subscribers", shared=False)
def export_subscribers(after_id: int | None = None) -> dict:
    with runtime.read_sessions() as session:
        return subscriber_admin.export_page(session, after_id)


# --- campaigns (campaigns.py) ----------------------------------------------------------------


@app.task(name="notifier.create_campaign", shared=False)
def create_campaign(subject: str, body: str, audience: dict | None = None) -> dict:
    with session_scope(runtime.sessions) as session:
        return campaigns.staff_view(campaigns.create(session, subject, body, audience, utcnow()))


@app.task(name="notifier.update_campaign", shared=False)
def update_campaign(campaign_id: int, subject: str, body: str, audience: dict | None = None):
    with session_scope(runtime.sessions) as session:
        campaign = campaigns.edit(session, campaign_id, subject, body, audience, utcnow())
        return campaigns.staff_view(campaign)


@app.task(name="notifier.list_campaigns", shared=False)
def list_campaigns(status: str | None = None, page: int = 1) -> dict:
    with runtime.read_sessions() as session:
        return campaigns.listing(session, status, page)


@app.task(name="notifier.get_campaign", shared=False)
def get_campaign(campaign_id: int) -> dict:
    """A campaign as staff see it, with its deliveries by status and its audience's size
    (as it would be counted now)."""
    with runtime.read_sessions() as session:
        campaign = campaigns.get(session, campaign_id)
        counts = campaigns.delivery_counts(session, campaign_id)
        audience = campaigns.audience_size(session, campaign.audience)
        return {**campaigns.staff_view(campaign, counts), "audience_size": audience}


@app.task(name="notifier.preview_campaign", shared=False)
def preview_campaign(campaign_id: int, email: str) -> dict:
    """The campaign as this subscriber would get it, built as it would be sent, not sent."""
    address = subscriptions.normalize_address(email)
    with runtime.read_sessions() as session:
        campaign = campaigns.get(session, campaign_id)
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
        if subscriber is None:
            raise NotFound("no subscriber with this address")
        period = ledger.campaign_period(campaign_id)
        message_id = ledger.message_id(subscriber.id, period, mail_settings().domain)
        data = emails.campaign_message(campaign, subscriber, message_id, mail_settings())
        in_audience = campaigns.reaches(session, campaign.audience, subscriber.id)
        return {
            "email": address,
            "status": subscriber.status,
            "in_audience": in_audience,
            "subject": campaign.subject,
            "html": campaign.body_html,
            "text": campaign.body_text,
            "message": data.decode("utf-8", "replace"),
        }


@app.task(name="notifier.request_campaign_test", shared=False)
def request_campaign_test(campaign_id: int, email: str) -> dict:
    """A test copy to a staff member's own address (the gateway gives the signed-in
    member's): on record, not on the ledger; mailed in the background."""
    address = subscriptions.normalize_address(email)
    with session_scope(runtime.sessions) as session:
        campaigns.get(session, campaign_id)
        audit.record(
            session,
            Base.metadata,
            "campaign.test_requested",
            "campaign",
            campaign_id,
            {"to": address},
        )
    app.send_task("notifier.send_campaign_test", args=[campaign_id, address])
    return {"status": "sending", "email": address}


@app.task(name="notifier.send_campaign_test", shared=False)
def send_campaign_test(campaign_id: int, email: str) -> dict:
    with runtime.read_sessions() as session:
        campaign = campaigns.get(session, campaign_id)
        message = emails.campaign_test(campaign, email, mail_settings())
    return _send_notice(message)


@app.task(name="notifier.schedule_campaign", shared=False)
def schedule_campaign(campaign_id: int, at: str | None = None) -> dict:
    """Send now (``at`` None) or at ``at`` (ISO 8601 with its time zone)."""
    moment = _moment(at)
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        campaign = campaigns.schedule(session, campaign_id, moment, now)
        answer = campaigns.staff_view(campaign)
        due_now = campaign.scheduled_at <= now
    if due_now:
        app.send_task(CAMPAIGN_HAND_OUT, args=[campaign_id])
    return answer


def _moment(at: str | None):
    if at is None:
        return None
    try:
        return datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise InvalidInput("the time must read 2026-12-24T09:00:00+00:00") from None


@app.task(name="notifier.unschedule_campaign", shared=False)
def unschedule_campaign(campaign_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        return campaigns.staff_view(campaigns.unschedule(session, campaign_id))


@app.task(name=CAMPAIGN_HAND_OUT, shared=False)
def send_campaign(campaign_id: int) -> dict:
    """Claim the campaign's rows and hand them out in batches; safe to run again (killed,
    redelivered, or picked again by ``send_due_campaigns``)."""
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        campaign = campaigns.start(session, campaign_id, now)
        audience = None if campaign is None else campaigns.audience_of(session, campaign.audience)
    if audience is None:
        return {"batches": 0, "deliveries": 0}
    handed_out = ledger.hand_out_campaign(
        runtime.sessions,
        campaign_id,
        audience,
        now,
        batch=runtime.settings.digest_batch,
        domain=mail_settings().domain,
        send=lambda ids: app.send_task(CAMPAIGN_BATCH, args=[campaign_id, ids]),
    )
    with session_scope(runtime.sessions) as session:
        campaigns.handed_out(session, campaign_id, now)
        campaigns.finish_if_done(session, campaign_id, utcnow())  # an empty audience
    return {"batches": handed_out.batches, "deliveries": handed_out.deliveries}


@app.task(name=CAMPAIGN_BATCH, shared=False, max_retries=None)
def send_campaign_batch(campaign_id: int, delivery_ids: list[int]) -> dict:
    pace = mail_rate.Pace(runtime.redis, runtime.settings.mail_rate)
    with mail_sender() as sender:
        outcome = sending.send_campaign_batch(
            runtime.engine, sender, campaign_id, delivery_ids, mail_settings(), utcnow(), pace
        )
    counts = {"sent": outcome.sent, "skipped": outcome.skipped, "failed": outcome.failed}
    log.info("campaign_batch_sent", campaign_id=campaign_id, **counts, retry=len(outcome.retry))
    if outcome.retry:
        raise TransientError(f"{len(outcome.retry)} campaign messages to retry")
    with session_scope(runtime.sessions) as session:
        campaigns.finish_if_done(session, campaign_id, utcnow())
    return counts


@app.task(name="notifier.send_due_campaigns", shared=False)
def send_due_campaigns() -> dict:
    """The beat's: hand out the campaigns whose time has come, and again those whose send
    was lost on the way (their rows still claimed after ``ledger.STALE_CLAIM``)."""
    now = utcnow()
    with runtime.read_sessions() as session:
        due = campaigns.due(session, now, now - ledger.STALE_CLAIM)
    for campaign_id in due:
        app.send_task(CAMPAIGN_HAND_OUT, args=[campaign_id])
    return {"handed_out": due}


@app.task(name="notifier.list_sent_campaigns", shared=False)
def list_sent_campaigns(page: int = 1, per_page: int = 20) -> dict:
    """The public "Take Action" archive, the latest first."""
    with runtime.read_sessions() as session:
        return campaigns.sent(session, page, per_page)


@app.task(name="notifier.get_sent_campaign", shared=False)
def get_sent_campaign(campaign_id: int) -> dict:
    with runtime.read_sessions() as session:
        return campaigns.sent_one(session, campaign_id)
