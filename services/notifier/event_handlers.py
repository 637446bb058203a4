"""How the notifier applies other services' events to its own copy of the facts.

Each handler takes a run of events of one type in delivery order and leaves what applying them
one by one would; a partnership import's thousands arrive in batches of hundreds, so the
handlers work on sets of rows, a few statements a batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, insert, select, update
from sqlalchemy.orm import Session

from services.notifier.models import (
    HiddenStory,
    KnownCity,
    PartnershipNews,
    SisterLink,
    Story,
    StoryCity,
    Subscriber,
)
from shared.events import utcnow

# Ids a statement names at most (SQLite's bound parameters are limited).
CHUNK = 500


def on_partnerships_changed(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``directory.partnership_changed``: the sister links as the last change of each
    partnership leaves them; news of a partnership created (and not deleted after)."""
    remember_cities(session, [city for payload in payloads for city in payload.get("cities") or []])
    changes: dict[int, list[dict]] = {}
    for payload in payloads:
        changes.setdefault(payload["partnership"]["id"], []).append(payload)
    ids = list(changes)
    had_news = set()
    for chunk in _chunks(ids):
        session.execute(delete(SisterLink).where(SisterLink.partnership_id.in_(chunk)))
        had_news.update(
            session.scalars(
                select(PartnershipNews.partnership_id).where(
                    PartnershipNews.partnership_id.in_(chunk)
                )
            )
        )
    news_gone, news_new, links = [], [], []
    now = utcnow()
    for partnership_id, its_changes in changes.items():
        has_news, deleted, created = partnership_id in had_news, False, None
        for payload in its_changes:
            if payload["change"] == "deleted":
                has_news, deleted, created = False, True, None
            elif payload["change"] == "created" and not has_news:
                has_news, created = True, payload["partnership"]
        if deleted and partnership_id in had_news:
            news_gone.append(partnership_id)
        if created is not None:
            news_new.append(
                {
                    "partnership_id": partnership_id,
                    "city_ids": list(created["city_ids"]),
                    "since": created.get("since"),
                    "received_at": now,
                }
            )
        last = its_changes[-1]
        if last["change"] != "deleted":
            partnership = last["partnership"]
            city_a, city_b = partnership["city_ids"]
            links += [
                {
                    "partnership_id": partnership_id,
                    "city_id": city,
                    "sister_city_id": sister,
                    "status": partnership["status"],
                }
                for city, sister in ((city_a, city_b), (city_b, city_a))
            ]
    for chunk in _chunks(news_gone):
        session.execute(delete(PartnershipNews).where(PartnershipNews.partnership_id.in_(chunk)))
    # The tables' own inserts, one executemany each (the ORM's bulk insert splits rows into
    # groups by which values are null, a statement a group).
    if news_new:
        session.execute(insert(PartnershipNews.__table__), news_new)
    if links:
        session.execute(insert(SisterLink.__table__), links)


def remember_cities(session: Session, cities: list[dict]) -> None:
    """Directory cities' names, the last told of each."""
    latest = {
        city["id"]: {
            "city_id": city["id"],
            "name": str(city["name"])[:200],
            "country_code": str(city.get("country_code") or "")[:2],
        }
        for city in cities
    }
    if not latest:
        return
    known = set()
    for chunk in _chunks(list(latest)):
        known.update(session.scalars(select(KnownCity.city_id).where(KnownCity.city_id.in_(chunk))))
    # The ORM's bulk update by primary key: one executemany.
    if known:
        session.execute(update(KnownCity), [latest[city_id] for city_id in known])
    new = [row for city_id, row in latest.items() if city_id not in known]
    if new:
        session.execute(insert(KnownCity.__table__), new)


def on_posts_announced(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``blog.post_published`` and ``blog.post_updated``: the notifier's copy of each story.
    An update keeps the time it was first received (it is not news again)."""
    for payload in payloads:
        _store_story(session, payload)


def _store_story(session: Session, payload: dict[str, Any]) -> None:
    revision = payload.get("revision")  # absent from announcements queued before it was sent
    hidden = session.get(HiddenStory, payload["id"])
    if hidden is not None:
        if not _after(revision, hidden.revision):
            return  # hidden by staff before this announcement was handled
        # Numbered after the hide: staff showed it again (its blog.post_shown may come later).
        _show(session, hidden, payload)
        return
    _write_story(session, payload, revision, utcnow())


def _after(revision: int | None, hidden_revision: int | None) -> bool:
    return revision is not None and hidden_revision is not None and revision > hidden_revision


def _write_story(
    session: Session, payload: dict[str, Any], revision: int | None, received_at: datetime
) -> None:
    story = session.get(Story, payload["id"])
    if story is None:
        story = Story(post_id=payload["id"], received_at=received_at)
        session.add(story)
    elif revision is not None and revision <= (story.revision or 0):
        return  # an older announcement than the copy's, handled late
    story.revision = revision if revision is not None else story.revision or 0
    story.title = payload["title"][:1000]
    story.excerpt = payload["excerpt"]
    story.url = payload["url"]
    story.source_name = (payload.get("source_name") or "")[:300] or None
    story.image = payload.get("image")
    story.published_at = datetime.fromisoformat(payload["published_at"])
    story.city_ids = sorted(set(payload.get("city_ids") or []))
    session.flush()
    session.execute(delete(StoryCity).where(StoryCity.post_id == story.post_id))
    session.add_all(StoryCity(post_id=story.post_id, city_id=city) for city in story.city_ids)


def on_posts_hidden(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``blog.post_hidden``: staff withdrew the story; a digest not yet sent never carries it
    (digests read the stories when they are rendered). A hide numbered before the copy (staff
    showed the story again, and that was handled first) changes nothing."""
    for payload in payloads:
        revision = payload.get("revision")
        story = session.get(Story, payload["id"])
        if story is not None and revision is not None and (story.revision or 0) > revision:
            continue
        hidden = session.get(HiddenStory, payload["id"])
        if hidden is None:
            hidden = HiddenStory(post_id=payload["id"], hidden_at=utcnow())
            session.add(hidden)
        elif not _after(revision, hidden.revision):
            continue  # delivered twice, or an older hide handled late
        hidden.revision = revision
        if story is not None:
            hidden.received_at = story.received_at
            session.execute(delete(StoryCity).where(StoryCity.post_id == story.post_id))
            session.delete(story)
        session.flush()  # a second event for the same story in this batch sees it


def on_posts_shown(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``blog.post_shown``: staff showed a withdrawn story again (the payload is its
    announcement). It returns as it was: news for the digests not yet sent when it was hidden,
    not for those sent since. A show numbered before the hide it meets changes nothing."""
    for payload in payloads:
        hidden = session.get(HiddenStory, payload["id"])
        if hidden is None:
            _store_story(session, payload)  # never hidden here: an announcement
        elif hidden.revision is None or _after(payload.get("revision"), hidden.revision):
            _show(session, hidden, payload)


def _show(session: Session, hidden: HiddenStory, payload: dict[str, Any]) -> None:
    received_at = hidden.received_at or utcnow()  # never received: news now
    session.delete(hidden)
    session.flush()
    _write_story(session, payload, payload.get("revision"), received_at)


def on_cities_changed(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``directory.cities_changed``: the names of cities staff renamed (an import names none)."""
    remember_cities(session, [city for payload in payloads for city in payload.get("cities") or []])


def on_cities_merged(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``directory.cities_merged``: who followed the duplicate follows the survivor, and news of
    its partnerships names the survivor. (Stories move with the blog's announcements, sister
    links with the directory's partnership events.)"""
    for payload in payloads:
        old, new = int(payload["from"]), int(payload["into"])
        for subscriber in _naming(session, Subscriber, old):
            subscriber.city_ids = sorted(
                {new if one == old else one for one in subscriber.city_ids}
            )
        for news in _naming(session, PartnershipNews, old):
            if new in news.city_ids:  # a partnership between the two: the directory removed it
                session.delete(news)
            else:
                news.city_ids = [new if one == old else one for one in news.city_ids]
        session.flush()  # the next payload reads these rows as they are now


def _naming(session: Session, model, city_id: int) -> list:
    """The rows whose ``city_ids`` hold ``city_id``: the JSON lists as text narrow them down,
    each list is then checked exactly."""
    candidates = session.scalars(
        select(model).where(cast(model.city_ids, String).like(f"%{city_id}%"))
    )
    return [row for row in candidates if city_id in (row.city_ids or [])]


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


HANDLERS = {
    "directory.partnership_changed": on_partnerships_changed,
    "blog.post_published": on_posts_announced,
    "blog.post_updated": on_posts_announced,
    "blog.post_hidden": on_posts_hidden,
    "blog.post_shown": on_posts_shown,
    "directory.cities_changed": on_cities_changed,
    "directory.cities_merged": on_cities_merged,
}
