"""What goes into a digest: the periods, who is due, and each subscriber's stories.

A subscriber following cities gets the stories about those cities and about their sisters;
one following nothing gets all the news. "New" means received by the notifier since that
subscriber's last digest (or since they confirmed), so a story announced late is not skipped;
when the last digest was cut is read from the ledger, which is the one record of what was sent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from services.notifier.models import (
    Delivery,
    KnownCity,
    PartnershipNews,
    SisterLink,
    Story,
    Subscriber,
)
from shared.errors import InvalidInput

MAX_STORIES = 20


PERIOD = re.compile(r"daily:\d{4}-\d{2}-\d{2}|weekly:\d{4}-W\d{2}")


def period_of(frequency: str, moment: datetime) -> str:
    if frequency == "daily":
        return f"daily:{moment.date().isoformat()}"
    year, week, _day = moment.isocalendar()
    return f"weekly:{year}-W{week:02d}"


def check_period(period: str) -> None:
    if not PERIOD.fullmatch(period):
        raise InvalidInput("period must read daily:2026-11-28 or weekly:2026-W48")


def due_subscribers(
    session: Session, frequency: str, now: datetime, every: bool = False
) -> list[int]:
    """Confirmed subscribers of ``frequency`` with no ledger row for the current period.
    Weekly ones are due from their weekday on; ``every`` ignores the weekday (staff's
    "send now")."""
    period = period_of(frequency, now)
    query = (
        select(Subscriber.id)
        .where(Subscriber.status == "confirmed", Subscriber.frequency == frequency)
        .where(
            ~exists().where(
                and_(Delivery.subscriber_id == Subscriber.id, Delivery.period == period)
            )
        )
        .order_by(Subscriber.id)
    )
    if frequency == "weekly" and not every:
        query = query.where(Subscriber.weekday <= now.weekday())
    return list(session.scalars(query))


@dataclass(frozen=True)
class StoryView:
    post_id: int
    title: str
    excerpt: str
    url: str
    image: str | None
    published_at: datetime
    source_name: str = "the original site"


@dataclass(frozen=True)
class PartnershipView:
    partnership_id: int
    cities: tuple[str, str]
    since: int | None


@dataclass(frozen=True)
class Digest:
    stories: list[StoryView]
    more: int  # stories beyond MAX_STORIES
    partnerships: list[PartnershipView] = field(default_factory=list)
    cities: tuple[str, ...] = ()  # the followed cities' names, where known

    @property
    def story_count(self) -> int:
        return len(self.stories) + self.more

    @property
    def count(self) -> int:
        return self.story_count + len(self.partnerships)


class StoryPool:
    """The stories received in a window, loaded once for a batch of subscribers, with the
    sisters of every city they follow."""

    def __init__(self, session: Session, since: datetime, until: datetime, cities: Iterable[int]):
        rows = session.scalars(
            select(Story)
            .where(Story.received_at > since, Story.received_at <= until)
            .order_by(Story.published_at.desc(), Story.post_id.desc())
        ).all()
        self.stories = [(row.received_at, set(row.city_ids), _view(row)) for row in rows]
        self.sisters: dict[int, set[int]] = defaultdict(set)
        wanted = set(cities)
        if wanted:
            links = session.execute(
                select(SisterLink.city_id, SisterLink.sister_city_id).where(
                    SisterLink.city_id.in_(wanted), SisterLink.status == "active"
                )
            )
            for city_id, sister_id in links:
                self.sisters[city_id].add(sister_id)
        news = session.scalars(
            select(PartnershipNews)
            .where(PartnershipNews.received_at > since, PartnershipNews.received_at <= until)
            .order_by(PartnershipNews.received_at.desc())
        ).all()
        self.partnerships = [row for row in news if wanted & set(row.city_ids)]
        named = wanted.union(*(set(row.city_ids) for row in self.partnerships))
        self.names: dict[int, str] = dict(
            session.execute(
                select(KnownCity.city_id, KnownCity.name).where(KnownCity.city_id.in_(named))
            ).all()
        )

    def digest_for(self, followed: list[int], since: datetime) -> Digest:
        if followed:
            wanted = set(followed).union(*(self.sisters[city] for city in followed))
            matching = [
                v for received, cities, v in self.stories if received > since and cities & wanted
            ]
        else:
            matching = [view for received, _cities, view in self.stories if received > since]
        return Digest(
            stories=matching[:MAX_STORIES],
            more=max(0, len(matching) - MAX_STORIES),
            partnerships=self._partnerships_of(set(followed), since),
            # Named only when every followed city's name is known: a partial list would mislead.
            cities=tuple(self.names[city] for city in followed)
            if all(city in self.names for city in followed)
            else (),
        )

    def _partnerships_of(self, followed: set[int], since: datetime) -> list[PartnershipView]:
        """New partnerships of a followed city (every partnership would be too many for the
        readers of all the news: an import brings thousands)."""
        views = []
        for row in self.partnerships:
            if row.received_at > since and followed & set(row.city_ids):
                a, b = (self.names.get(city, "a city in the directory") for city in row.city_ids)
                views.append(PartnershipView(row.partnership_id, (a, b), row.since))
        return views[:MAX_STORIES]


def _view(row: Story) -> StoryView:
    return StoryView(
        row.post_id,
        row.title,
        row.excerpt,
        row.url,
        row.image,
        row.published_at,
        row.source_name or StoryView.source_name,
    )


def last_digests(
    session: Session, subscriber_ids: Iterable[int], before: datetime | None = None
) -> dict[int, datetime]:
    """When each subscriber's last digest (``before`` a moment, if given) was cut, from the
    ledger (a digest with no news counts: its window is closed too)."""
    query = (
        select(Delivery.subscriber_id, func.max(Delivery.sent_at))
        .where(Delivery.subscriber_id.in_(list(subscriber_ids)))
        .where(Delivery.status.in_(("sent", "empty")), Delivery.campaign_id.is_(None))
        .group_by(Delivery.subscriber_id)
    )
    if before is not None:
        query = query.where(Delivery.sent_at < before)
    return dict(session.execute(query).all())


def since_of(subscriber: Subscriber, last_digest: datetime | None) -> datetime:
    return last_digest or subscriber.confirmed_at or subscriber.created_at


def digest_at(session: Session, subscriber: Subscriber, cut: datetime) -> Digest:
    """One subscriber's digest cut at ``cut`` (a batch cuts many from one ``StoryPool``): the
    news received after their digest before it, up to it.

    Cut at a digest's ``sent_at`` (its batch's moment, which closed its window), it is that
    digest again, for staff's re-send of one never acknowledged: the window is the same, and
    a story keeps the moment it was received. What changed since changes it too: a story
    edited since reads as edited, one withdrawn is left out, and the cities are those the
    subscriber follows now."""
    since = since_of(subscriber, last_digests(session, [subscriber.id], cut).get(subscriber.id))
    return StoryPool(session, since, cut, subscriber.city_ids).digest_for(
        subscriber.city_ids, since
    )
