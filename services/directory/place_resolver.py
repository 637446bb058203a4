"""Names to places: which directory city a partnership file's ``Side`` means.

A side is found by its folded name or an alternate name within the country (nearest to the
given coordinates, within 30 km), else by a nearby city of a similar name. With GeoNames'
cities500 loaded nearly every side is found so; a place the directory still lacks becomes a
new city once, however many rows spell it, with the region its coordinates lie in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.directory.geography import distance_km, nearest_region, resolve_country
from services.directory.models import City, CityName
from services.directory.names import normalize
from services.directory.partnership_csv import RowError, Side

MATCH_RADIUS_KM = 30.0
# A place the directory lacks, spelled differently in another row, is the same place when
# it lies this close with a similar name.
SAME_PLACE_KM = 8.0
SIMILAR_NAME = 80
# A place too small for cities500 lies in the countryside: the region of a known place this
# far away is still, nearly always, its own.
CREATED_REGION_KM = 25.0
# Linear in the name: a run of spaces is tried from its start only, and "[^()]*" stops at the
# next parenthesis instead of rescanning to the end from each "(".
_QUALIFIER = re.compile(r"(?<!\s)\s*\(([^()]*)\)\s*$")


@dataclass(slots=True)
class Place:
    id: int
    country_code: str
    latitude: float
    longitude: float
    population: int
    folded: str


class Resolver:
    """Finds the directory city a (name, country, coordinates) means, creating it if needed;
    counts the sides it matched and the cities it created."""

    def __init__(self, session: Session):
        self.session = session
        self.matched = 0
        self.created = 0
        self.places: dict[int, Place] = {}
        self.by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.grid: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        for row in session.execute(
            select(
                City.id,
                City.country_code,
                City.latitude,
                City.longitude,
                City.population,
                City.name,
            ).where(City.merged_into.is_(None))  # a merged record is matched as its survivor
        ):
            self._remember(Place(row[0], row[1], row[2], row[3], row[4], normalize(row[5])))
        for city_id, folded in session.execute(select(CityName.city_id, CityName.folded)):
            place = self.places.get(city_id)
            if place is not None and city_id not in self.by_name[(place.country_code, folded)]:
                self.by_name[(place.country_code, folded)].append(city_id)
        self.divisions = _divisions(session)

    def _remember(self, place: Place) -> None:
        self.places[place.id] = place
        self.by_name[(place.country_code, place.folded)].append(place.id)
        self.grid[_cell(place.country_code, place.latitude, place.longitude)].append(place.id)

    def find(self, side: Side) -> int | None:
        """The existing city this side means; None when it must be created (it has
        coordinates). Raises ``RowError`` when neither can be done."""
        codes = resolve_country(side.country)
        if not codes:
            raise RowError(f"unknown country {side.country!r}")
        names = _name_variants(side.name)
        if not names:
            raise RowError(f"{side.name!r} has no letters")
        for code in codes:
            found = self._by_name(code, names, side)
            if found is None and side.latitude is not None:
                found = self._nearby_similar(code, names[0], side)
            if found is not None:
                return found
        if side.latitude is None:
            raise RowError(f"no city {side.name!r} in {side.country}; give its coordinates")
        return None

    def find_or_create(self, side: Side) -> int:
        found = self.find(side)
        if found is not None:
            self.matched += 1
            return found
        return self._create(resolve_country(side.country)[0], side)

    def find_existing(self, side: Side) -> int:
        found = self.find(side)
        assert found is not None, "every side was matched or created in the first pass"
        return found

    def _by_name(self, code: str, names: list[str], side: Side) -> int | None:
        for folded in names:
            candidates = self.by_name.get((code, folded))
            if not candidates:
                continue
            if side.latitude is None:
                return max(candidates, key=lambda cid: self.places[cid].population)
            nearest = min(candidates, key=lambda cid: self._distance(cid, side))
            if self._distance(nearest, side) <= MATCH_RADIUS_KM:
                return nearest
        return None

    def _nearby_similar(self, code: str, folded: str, side: Side) -> int | None:
        best: tuple[float, int] | None = None
        row, column = _cell(code, side.latitude, side.longitude)[1:]
        for d_row in (-1, 0, 1):
            for d_column in (-1, 0, 1):
                for city_id in self.grid.get((code, row + d_row, column + d_column), ()):
                    distance = self._distance(city_id, side)
                    if distance > SAME_PLACE_KM:
                        continue
                    similarity = fuzz.ratio(folded, self.places[city_id].folded)
                    if similarity >= SIMILAR_NAME and (best is None or distance < best[0]):
                        best = (distance, city_id)
        return best[1] if best else None

    def _create(self, code: str, side: Side) -> int:
        folded = normalize(side.name)
        region = nearest_region(code, side.latitude, side.longitude, within_km=CREATED_REGION_KM)
        city = City(
            name=side.name,
            ascii_name=folded,
            country_code=code,
            region=region,
            admin1_code=self.divisions.get((code, region)),
            latitude=side.latitude,
            longitude=side.longitude,
            population=0,
            source="import",
        )
        city.names.append(CityName(name=side.name, folded=folded, kind="name"))
        self.session.add(city)
        self.session.flush()
        self._remember(Place(city.id, code, side.latitude, side.longitude, 0, folded))
        self.created += 1
        return city.id

    def _distance(self, city_id: int, side: Side) -> float:
        place = self.places[city_id]
        return distance_km(place.latitude, place.longitude, side.latitude, side.longitude)


def _divisions(session: Session) -> dict[tuple[str, str | None], str]:
    """(country, region name) -> GeoNames' division code, where the directory's GeoNames
    places give that region one code."""
    codes: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for country, region, admin1 in session.execute(
        select(City.country_code, City.region, City.admin1_code)
        .where(City.region.is_not(None), City.admin1_code.is_not(None))
        .distinct()
    ):
        codes[(country, region)].add(admin1)
    return {key: found.pop() for key, found in codes.items() if len(found) == 1}


def _cell(code: str, latitude: float, longitude: float) -> tuple[str, int, int]:
    return (code, int(latitude * 10), int(longitude * 10))


def _name_variants(name: str) -> list[str]:
    """The folded name, then without a trailing qualifier ("Springfield (Illinois)") and
    without what follows a comma ("Paris, 15th arrondissement")."""
    variants = [normalize(name)]
    bare = _QUALIFIER.sub("", name)
    variants.append(normalize(bare))
    variants.append(normalize(bare.split(",")[0]))
    unique: list[str] = []
    for variant in variants:
        if variant and variant not in unique:
            unique.append(variant)
    return unique
