"""Names of directory cities for pages that hold only their ids (stories, preferences)."""

from __future__ import annotations

from services.gateway.calls import call
from shared.errors import ServiceError


def city_names(city_ids: list[int]) -> dict[int, dict]:
    """Directory cities by id ({id, name, country_code}); unknown ids are left out, and all
    are when the directory cannot answer: the page still shows, with less in it."""
    if not city_ids:
        return {}
    ids = sorted(set(city_ids))
    try:
        found = call("directory.get_city_names", cached=True, city_ids=ids)
    except ServiceError:
        return {}
    return {city["id"]: city for city in found["cities"]}


def followed_cities(city_ids: list[int]) -> list[dict]:
    """Each id with its name where the directory knows it, in the order given."""
    known = city_names(city_ids)
    return [known.get(city_id, {"id": city_id, "name": f"City #{city_id}"}) for city_id in city_ids]
