"""Every shape in which the directory shows a city to the world, in one place so that its
answers, its events and its pages agree. Each takes a ``models.City`` row or the search
index's ``CityRecord``."""

from __future__ import annotations

from typing import Any

from services.directory.geography import country_name, distance_km
from services.directory.models import City, Partnership
from services.directory.search_index import CityRecord

# A city as the database holds it or as the search index keeps it: the same attributes.
CityShape = City | CityRecord


def city_reference(city: CityShape) -> dict[str, Any]:
    """Enough to name a city elsewhere: what events and other services carry."""
    return {"id": city.id, "name": city.name, "country_code": city.country_code}


def city_summary(city: CityShape, sister_count: int) -> dict[str, Any]:
    """A city as a search result, a suggestion and the head of its own page."""
    return {
        "id": city.id,
        "name": city.name,
        "country_code": city.country_code,
        "country": country_name(city.country_code),
        "region": city.region,
        "latitude": city.latitude,
        "longitude": city.longitude,
        "population": city.population,
        "sister_count": sister_count,
    }


def sister_city(city: CityShape, sister: CityShape, partnership: Partnership) -> dict[str, Any]:
    """``sister`` as one of ``city``'s sister cities, with their bond."""
    return {
        "id": sister.id,
        "partnership_id": partnership.id,
        "name": sister.name,
        "country_code": sister.country_code,
        "country": country_name(sister.country_code),
        "region": sister.region,
        "latitude": sister.latitude,
        "longitude": sister.longitude,
        "since": partnership.since,
        "status": partnership.status,
        "distance_km": round(
            distance_km(city.latitude, city.longitude, sister.latitude, sister.longitude), 1
        ),
    }
