"""How the notifier applies other services' events to its own copy of the facts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from services.notifier.models import KnownCity, PartnershipNews, SisterLink, Story, StoryCity
from shared.events import utcnow


def on_partnership_changed(session: Session, payload: dict[str, Any], _envelope: dict) -> None:
    partnership = payload["partnership"]
    remember_cities(session, payload.get("cities") or [])
    session.execute(delete(SisterLink).where(SisterLink.partnership_id == partnership["id"]))
    if payload["change"] == "deleted":
        session.execute(
            delete(PartnershipNews).where(PartnershipNews.partnership_id == partnership["id"])
        )
        return
    if payload["change"] == "created" and session.get(PartnershipNews, partnership["id"]) is None:
        session.add(
            PartnershipNews(
                partnership_id=partnership["id"],
                city_ids=list(partnership["city_ids"]),
                since=partnership.get("since"),
                received_at=utcnow(),
            )
        )
    city_a, city_b = partnership["city_ids"]
    for city_id, sister_city_id in ((city_a, city_b), (city_b, city_a)):
        session.add(
            SisterLink(
                partnership_id=partnership["id"],
                city_id=city_id,
                sister_city_id=sister_city_id,
                status=partnership["status"],
            )
        )


def remember_cities(session: Session, cities: list[dict]) -> None:
    for city in cities:
        known = session.get(KnownCity, city["id"]) or KnownCity(city_id=city["id"])
        known.name = str(city["name"])[:200]
        known.country_code = str(city.get("country_code") or "")[:2]
        session.add(known)


def on_post_announced(session: Session, payload: dict[str, Any], _envelope: dict) -> None:
    """``blog.post_published`` and ``blog.post_updated``: the notifier's copy of the story.
    An update keeps the time it was first received (it is not news again)."""
    story = session.get(Story, payload["id"])
    if story is None:
        story = Story(post_id=payload["id"], received_at=utcnow())
        session.add(story)
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


HANDLERS = {
    "directory.partnership_changed": on_partnership_changed,
    "blog.post_published": on_post_announced,
    "blog.post_updated": on_post_announced,
}
