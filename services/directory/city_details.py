"""One city with all its sister cities, sorted as the reader asks, and counted by country and
continent."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from services.directory.geography import continent_of, country_name, distance_km
from services.directory.models import City, Partnership
from shared.errors import InvalidInput, NotFound

SORTS = ("distance", "year", "name")


def city_summary(city: City, sister_count: int) -> dict:
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


def get_city(session: Session, city_id: int, sort: str = "distance") -> dict:
    if sort not in SORTS:
        raise InvalidInput("sort must be one of " + ", ".join(SORTS))
    city = session.get(City, city_id)
    if city is None:
        raise NotFound(f"no city with id {city_id}")
    sister = aliased(City)
    rows = session.execute(
        select(Partnership, sister)
        .join(
            sister,
            or_(
                (Partnership.city_a_id == city_id) & (sister.id == Partnership.city_b_id),
                (Partnership.city_b_id == city_id) & (sister.id == Partnership.city_a_id),
            ),
        )
        .where(or_(Partnership.city_a_id == city_id, Partnership.city_b_id == city_id))
    ).all()
    sisters = [
        {
            "id": other.id,
            "partnership_id": partnership.id,
            "name": other.name,
            "country_code": other.country_code,
            "country": country_name(other.country_code),
            "region": other.region,
            "latitude": other.latitude,
            "longitude": other.longitude,
            "since": partnership.since,
            "status": partnership.status,
            "distance_km": round(
                distance_km(city.latitude, city.longitude, other.latitude, other.longitude), 1
            ),
        }
        for partnership, other in rows
    ]
    if sort == "distance":
        sisters.sort(key=lambda s: (s["distance_km"], s["name"]))
    elif sort == "year":
        # Oldest bonds first; those without a known year last.
        sisters.sort(key=lambda s: (s["since"] is None, s["since"] or 0, s["name"]))
    else:
        sisters.sort(key=lambda s: (s["name"].casefold(), s["country_code"]))
    by_country = Counter(s["country"] for s in sisters)
    by_continent = Counter(continent_of(s["country_code"]) for s in sisters)
    result = city_summary(city, len(sisters))
    result.update(
        timezone=city.timezone,
        sisters=sisters,
        countries=[{"name": name, "count": count} for name, count in by_country.most_common()],
        continents=[{"name": name, "count": count} for name, count in by_continent.most_common()],
    )
    return result
