"""What the admin routes share: answer shapes, reading an uploaded file, and checking the
city ids staff give."""

from __future__ import annotations

from apiflask import HTTPError, Schema
from apiflask.fields import Integer, String
from apiflask.validators import Length

from services.gateway.calls import call
from shared.errors import NotFound


class Deleted(Schema):
    deleted = Integer(required=True)


class SubscriberQuery(Schema):
    """A preview's subscriber, by address (a digest's, a campaign's)."""

    email = String(required=True, validate=Length(min=3, max=254))


def uploaded_text(upload) -> str:
    """An uploaded file as text: UTF-8, a byte order mark (some programs write one) dropped;
    anything else is a 400."""
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPError(400, "the file is not UTF-8 text") from None


def require_cities(city_ids: list[int]) -> None:
    """Every id a directory city, else a 404 naming the others: the blog keeps ids only and
    cannot tell."""
    wanted = sorted(set(city_ids))
    if not wanted:
        return
    found = {city["id"] for city in call("directory.get_city_names", wanted)["cities"]}
    missing = [city_id for city_id in wanted if city_id not in found]
    if missing:
        raise NotFound(f"no city with id {', '.join(map(str, missing))}")
