""" "Take Action" announcements (campaigns): staff write one, choose who gets it, preview it,
try it on themselves, and send it now or at a set time; the public site shows those sent.

A campaign goes out through the digest ledger: one ``Delivery`` row per (campaign,
subscriber), claimed before anything is sent and marked just before each message's last
line (``ledger.py``), so a worker killed mid-send neither repeats nor skips anyone. Its
hand-out (``ledger.hand_out_campaign``) may run any number of times; the campaign is "sent"
once every audience row was claimed and none is still claimed (``finish_if_done``).

The audience is every confirmed subscriber, or the followers of chosen cities and of the
cities of chosen countries, and, if asked, of those cities' sister cities. It is worked out
from the notifier's own copies of the directory's facts (``KnownCity``: the cities it
learned, every followed city among them; ``SisterLink``: the partnerships, as digests read
them), so a send never waits on the directory.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Text, any_, cast, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session

from services.notifier import campaign_bodies
from services.notifier.models import Base, Campaign, Delivery, KnownCity, SisterLink, Subscriber
from shared import audit
from shared.actor import SYSTEM, current_actor
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import publish

STATUSES = ("draft", "scheduled", "sending", "sent")
MAX_SUBJECT_CHARS = 200
MAX_AUDIENCE_ITEMS = 100
MAX_ID = 2**31 - 1
COUNTRY = re.compile(r"[A-Z]{2}\Z")
PAGE = 50
SENT_EVENT = "notifier.campaign_sent"


# --- writing one ---------------------------------------------------------------------------


def checked_audience(audience: object) -> dict:
    """``{"city_ids": [...], "country_codes": [...], "sisters": bool}``, checked."""
    if audience is None:
        audience = {}
    if not isinstance(audience, dict) or set(audience) - {"city_ids", "country_codes", "sisters"}:
        raise InvalidInput("audience takes city_ids, country_codes and sisters")
    city_ids = audience.get("city_ids") or []
    codes = audience.get("country_codes") or []
    sisters = audience.get("sisters", False)
    if not isinstance(city_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in city_ids
    ):
        raise InvalidInput("city_ids must be a list of city ids")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise InvalidInput("country_codes must be a list of two-letter country codes")
    codes = [code.strip().upper() for code in codes]
    if not all(COUNTRY.match(code) for code in codes):
        raise InvalidInput("country_codes must be a list of two-letter country codes")
    if len(city_ids) + len(codes) > MAX_AUDIENCE_ITEMS:
        raise InvalidInput(f"at most {MAX_AUDIENCE_ITEMS} cities and countries")
    if not isinstance(sisters, bool):
        raise InvalidInput("sisters must be true or false")
    return {
        "city_ids": sorted(set(city_ids)),
        "country_codes": sorted(set(codes)),
        "sisters": sisters,
    }


def _checked_text(subject: object, body: object) -> tuple[str, str]:
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidInput("a subject is needed")
    subject = " ".join(subject.split())
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidInput(f"the subject is longer than {MAX_SUBJECT_CHARS} characters")
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput("a body is needed")
    if len(body) > campaign_bodies.MAX_MARKDOWN_CHARS:
        raise InvalidInput(
            f"the body is longer than {campaign_bodies.MAX_MARKDOWN_CHARS} characters"
        )
    return subject, body


def _write(campaign: Campaign, subject: str, body: str, audience: dict, now: datetime) -> None:
    campaign.subject = subject
    campaign.body_markdown = body
    campaign.body_html = campaign_bodies.html_of(body)
    campaign.body_text = campaign_bodies.text_of(campaign.body_html)
    campaign.audience = audience
    campaign.updated_at = now


def create(session: Session, subject: object, body: object, audience: object, now: datetime):
    subject, body = _checked_text(subject, body)
    audience = checked_audience(audience)
    actor = current_actor() or SYSTEM
    campaign = Campaign(status="draft", created_at=now, created_by=actor["name"])
    _write(campaign, subject, body, audience, now)
    session.add(campaign)
    session.flush()
    audit.record(
        session,
        Base.metadata,
        "campaign.created",
        "campaign",
        campaign.id,
        {"subject": subject, "audience": audience},
    )
    return campaign


def edit(
    session: Session,
    campaign_id: int,
    subject: object,
    body: object,
    audience: object,
    now: datetime,
) -> Campaign:
    campaign = _editable(session, campaign_id)
    subject, body = _checked_text(subject, body)
    audience = checked_audience(audience)
    before = {"subject": campaign.subject, "audience": campaign.audience}
    _write(campaign, subject, body, audience, now)
    after = {"subject": subject, "audience": audience}
    audit.record(
        session,
        Base.metadata,
        "campaign.edited",
        "campaign",
        campaign.id,
        {"before": before, "after": after},
    )
    return campaign


def _editable(session: Session, campaign_id: int) -> Campaign:
    """A draft: what an admin scheduled is what goes out (put back to draft to change it)."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.status != "draft":
        raise Conflict(f"this campaign is {campaign.status}: only a draft can change")
    return campaign


def get(session: Session, campaign_id: int, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    campaign = session.scalar(query.with_for_update() if lock else query)
    if campaign is None:
        raise NotFound("no such campaign")
    return campaign


def schedule(session: Session, campaign_id: int, at: datetime | None, now: datetime) -> Campaign:
    """Send at ``at`` (None: now). The beat's ``send_due_campaigns`` picks it up when due;
    one due now is also handed out at once by the task that asked."""
    if at is not None and at.tzinfo is None:
        raise InvalidInput("the time must name its time zone (2026-12-24T09:00:00+00:00)")
    if at is not None and at < now:
        raise InvalidInput("that time has passed: send it now, or choose a later time")
    campaign = get(session, campaign_id, lock=True)
    if campaign.status != "draft":
        raise Conflict(f"this campaign is {campaign.status}: only a draft is sent or scheduled")
    campaign.status = "scheduled"
    campaign.scheduled_at = now if at is None else at
    action = "campaign.send_requested" if at is None else "campaign.scheduled"
    audit.record(
        session,
        Base.metadata,
        action,
        "campaign",
        campaign.id,
        {"scheduled_at": campaign.scheduled_at.isoformat()},
    )
    return campaign


def unschedule(session: Session, campaign_id: int) -> Campaign:
    campaign = get(session, campaign_id, lock=True)
    if campaign.status != "scheduled":
        raise Conflict(f"this campaign is {campaign.status}, not scheduled")
    campaign.status, campaign.scheduled_at = "draft", None
    audit.record(session, Base.metadata, "campaign.unscheduled", "campaign", campaign.id)
    return campaign


# --- sending it ----------------------------------------------------------------------------


def audience_cities(session: Session, audience: dict) -> set[int] | None:
    """The cities whose followers are the audience; None: every confirmed subscriber."""
    if not audience["city_ids"] and not audience["country_codes"]:
        return None
    cities = set(audience["city_ids"])
    if audience["country_codes"]:
        cities |= set(
            session.scalars(
                select(KnownCity.city_id).where(
                    KnownCity.country_code.in_(audience["country_codes"])
                )
            )
        )
    if audience["sisters"] and cities:
        cities |= set(
            session.scalars(
                select(SisterLink.sister_city_id).where(
                    SisterLink.city_id.in_(cities), SisterLink.status == "active"
                )
            )
        )
    return cities


def _in_audience(session: Session, audience: dict) -> list | None:
    """The conditions a subscriber of the audience meets; None: no one is in it."""
    cities = audience_cities(session, audience)
    if cities is not None and not cities:
        return None
    confirmed = [Subscriber.status == "confirmed"]
    return confirmed if cities is None else [*confirmed, _follows_any(session, cities)]


def audience_of(session: Session, audience: dict) -> list[int]:
    """The confirmed subscribers the campaign goes to, by id."""
    where = _in_audience(session, audience)
    if where is None:
        return []
    return list(session.scalars(select(Subscriber.id).where(*where).order_by(Subscriber.id)))


def audience_size(session: Session, audience: dict) -> int:
    """How many the campaign would go to now: counted by the database, since the campaign's
    page shows it on every view and reading 100,000 ids back to count them took 100 ms."""
    where = _in_audience(session, audience)
    if where is None:
        return 0
    return session.scalar(select(func.count()).select_from(Subscriber).where(*where))


def reaches(session: Session, audience: dict, subscriber_id: int) -> bool:
    """Whether the campaign would go to this subscriber now (the preview says so)."""
    where = _in_audience(session, audience)
    if where is None:
        return False
    return session.scalar(select(exists().where(Subscriber.id == subscriber_id, *where)))


def _follows_any(session: Session, cities: set[int]):
    """A subscriber's followed cities (a JSON list) hold one of these: matched by the
    database, rather than reading every list back to match it here. On PostgreSQL, through
    ``ix_subscribers_city_ids`` (``@> ANY`` of one-city lists), so a count of the followers
    reads only theirs."""
    if session.get_bind().dialect.name == "postgresql":
        lists = literal([f"[{city}]" for city in sorted(cities)], ARRAY(Text))
        return cast(Subscriber.city_ids, JSONB).op("@>")(any_(cast(lists, ARRAY(JSONB))))
    followed = func.json_each(Subscriber.city_ids).table_valued("value").alias("followed")
    return exists(select(1).select_from(followed).where(followed.c.value.in_(sorted(cities))))


def start(session: Session, campaign_id: int, now: datetime) -> Campaign | None:
    """The campaign about to be handed out (scheduled and due: now sending), or None when
    there is nothing to send (a draft again, or sent)."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.status == "scheduled" and campaign.scheduled_at <= now:
        campaign.status = "sending"
        audit.record(session, Base.metadata, "campaign.sending", "campaign", campaign.id)
    if campaign.status != "sending":
        return None
    # Each hand-out restarts the clock ``due`` reads: a send still under way (a batch
    # retrying a mail server that is down) is handed out again once a ``STALE_CLAIM``, not
    # at every beat.
    campaign.started_at = now
    return campaign


def handed_out(session: Session, campaign_id: int, now: datetime) -> None:
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.handed_out_at.is_(None))
        .values(handed_out_at=now)
    )


def finish_if_done(session: Session, campaign_id: int, now: datetime) -> bool:
    """Sent once every audience row was claimed and none is still claimed; announced (the
    public pages change) and put on record once."""
    still_claimed = select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == "claimed"
    )
    done = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "sending")
        .where(Campaign.handed_out_at.is_not(None), ~still_claimed.exists())
        .values(status="sent", sent_at=now)
        .returning(Campaign.id)
    ).scalar()
    if done is None:
        return False
    counts = delivery_counts(session, campaign_id)
    audit.record(session, Base.metadata, "campaign.sent", "campaign", campaign_id, counts)
    publish(session, Base.metadata, SENT_EVENT, {"campaign_id": campaign_id})
    return True


def due(session: Session, now: datetime, stale_before: datetime) -> list[int]:
    """Campaigns to hand out: scheduled ones whose time has come, and those sending that
    started before ``stale_before`` (a hand-out or a batch lost: handing out again sends only
    what is still claimed or never was)."""
    scheduled = (Campaign.status == "scheduled") & (Campaign.scheduled_at <= now)
    stuck = (Campaign.status == "sending") & (Campaign.started_at < stale_before)
    return list(session.scalars(select(Campaign.id).where(scheduled | stuck).order_by(Campaign.id)))


# --- what staff and the public see ----------------------------------------------------------


def delivery_counts(session: Session, campaign_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    ).all()
    return dict(rows)


def staff_view(campaign: Campaign, counts: dict[str, int] | None = None) -> dict:
    return {
        **public_view(campaign),
        "body_markdown": campaign.body_markdown,
        "body_text": campaign.body_text,
        "audience": campaign.audience,
        "status": campaign.status,
        "scheduled_at": _iso(campaign.scheduled_at),
        "created_at": campaign.created_at.isoformat(),
        "updated_at": campaign.updated_at.isoformat(),
        "created_by": campaign.created_by,
        "deliveries": counts if counts is not None else {},
    }


def public_view(campaign: Campaign) -> dict:
    return {
        "id": campaign.id,
        "subject": campaign.subject,
        "body_html": campaign.body_html,
        "sent_at": _iso(campaign.sent_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def listing(session: Session, status: str | None, page: int) -> dict:
    """Staff's list, newest first, a page at a time, each with its deliveries by status."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    query = select(Campaign)
    total = select(func.count()).select_from(Campaign)
    if status is not None:
        query, total = (
            query.where(Campaign.status == status),
            total.where(Campaign.status == status),
        )
    campaigns = session.scalars(
        query.order_by(Campaign.id.desc()).offset((page - 1) * PAGE).limit(PAGE)
    ).all()
    counts: dict[int, dict[str, int]] = {campaign.id: {} for campaign in campaigns}
    for campaign_id, delivery_status, count in session.execute(
        select(Delivery.campaign_id, Delivery.status, func.count())
        .where(Delivery.campaign_id.in_(list(counts)))
        .group_by(Delivery.campaign_id, Delivery.status)
    ):
        counts[campaign_id][delivery_status] = count
    return {
        "total": session.scalar(total),
        "page": page,
        "per_page": PAGE,
        "campaigns": [staff_view(campaign, counts[campaign.id]) for campaign in campaigns],
    }


def sent(session: Session, page: int, per_page: int) -> dict:
    """The public archive: sent campaigns, the latest first."""
    where = Campaign.status == "sent"
    campaigns = session.scalars(
        select(Campaign)
        .where(where)
        .order_by(Campaign.sent_at.desc(), Campaign.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    total = session.scalar(select(func.count()).select_from(Campaign).where(where))
    return {"total": total, "page": page, "campaigns": [public_view(c) for c in campaigns]}


def sent_one(session: Session, campaign_id: int) -> dict:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != "sent":
        raise NotFound("no such announcement")
    return public_view(campaign)
