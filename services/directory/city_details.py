"""One city with all its sister cities, sorted as the reader asks, and counted by country and
continent."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from services.directory.city_views import city_summary, sister_city
from services.directory.geography import continent_of
from services.directory.models import City, Partnership
from shared.errors import InvalidInput, NotFound

SORTS = ("distance", "year", "name")


def get_city(session: Session, city_id: int, sort: str = "distance") -> dict:
    if sort not in SORTS:
        raise InvalidInput("sort must be one of " + ", ".join(SORTS))
    city = session.get(City, city_id)
    if city is None:
        raise NotFound(f"no city with id {city_id}")
    if city.merged_into is not None:
        # A merged record's id leads to the survivor (city_merges.py): its page redirects.
        return {**get_city(session, city.merged_into, sort), "merged_into": city.merged_into}
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
    sisters = [sister_city(city, other, partnership) for partnership, other in rows]
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
