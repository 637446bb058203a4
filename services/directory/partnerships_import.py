"""Importing partnerships from CSV: the real twin_cities.csv format
(``city1,country1,lat1,lng1,city2,country2,lat2,lng2``) and a native format
(``city_a,country_a,city_b,country_b,since,status,source`` with optional ``lat_a,lng_a,
lat_b,lng_b`` and ``notes``).

Each side is resolved to one directory city: by its folded name or an alternate name within
the country (nearest to the given coordinates, within 30 km), else by a nearby city of a
similar name. With GeoNames' cities500 loaded nearly every side is found so; a place the
directory still lacks becomes a new city once, however many rows spell it, with the region
its coordinates lie in.
Bad rows are reported with their line number and never stop the import. Re-importing the same
file changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rapidfuzz import fuzz
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.directory.geography import distance_km, nearest_region, resolve_country
from services.directory.index_version import bump_version
from services.directory.models import (
    PARTNERSHIP_STATUSES,
    Base,
    City,
    CityName,
    Partnership,
)
from services.directory.names import normalize
from services.directory.partnerships import EARLIEST_YEAR
from shared.events import publish_many

MATCH_RADIUS_KM = 30.0
# A place the directory lacks, spelled differently in another row, is the same place when
# it lies this close with a similar name.
SAME_PLACE_KM = 8.0
SIMILAR_NAME = 80
BATCH_ROWS = 1000
# A place too small for cities500 lies in the countryside: the region of a known place this
# far away is still, nearly always, its own.
CREATED_REGION_KM = 25.0
MAX_NAME_CHARS = 200

TWIN_CITIES_COLUMNS = ["city1", "country1", "lat1", "lng1", "city2", "country2", "lat2", "lng2"]
NATIVE_REQUIRED = ["city_a", "country_a", "city_b", "country_b"]
# Linear in the name: a run of spaces is tried from its start only, and "[^()]*" stops at the
# next parenthesis instead of rescanning to the end from each "(".
_QUALIFIER = re.compile(r"(?<!\s)\s*\(([^()]*)\)\s*$")


class RowError(ValueError):
    """Why one row cannot be imported."""


@dataclass
class Side:
    name: str
    country: str
    latitude: float | None
    longitude: float | None


@dataclass
class Row:
    line: int
    a: Side
    b: Side
    since: int | None = None
    status: str = "active"
    source: str | None = None
    notes: str | None = None


@dataclass
class ImportReport:
    rows_read: int = 0
    partnerships_created: int = 0
    partnerships_already_present: int = 0
    cities_matched: int = 0
    cities_created: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def lines(self, show_rejected: int = 50) -> list[str]:
        lines = [
            f"rows read:                      {self.rows_read:,}",
            f"partnerships created:           {self.partnerships_created:,}",
            f"partnerships already present:   {self.partnerships_already_present:,}",
            f"city sides matched:             {self.cities_matched:,}",
            f"cities created:                 {self.cities_created:,}",
            f"rows rejected:                  {len(self.rejected):,}",
        ]
        for line, reason in self.rejected[:show_rejected]:
            lines.append(f"  line {line}: {reason}")
        if len(self.rejected) > show_rejected:
            lines.append(f"  ... and {len(self.rejected) - show_rejected:,} more")
        return lines

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "partnerships_created": self.partnerships_created,
            "partnerships_already_present": self.partnerships_already_present,
            "cities_matched": self.cities_matched,
            "cities_created": self.cities_created,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
        }


# --- reading ------------------------------------------------------------------------------


def read_rows(text: str, report: ImportReport) -> Iterator[Row]:
    """Rows of either format; a malformed row is reported and skipped."""
    # Universal newlines: a lone "\r" ends a line (as old spreadsheets write them).
    stream = io.StringIO(text.lstrip("\ufeff"), newline=None)
    reader = csv.DictReader(stream, skipinitialspace=True)
    try:
        header = [column.strip().lower() for column in reader.fieldnames or []]
    except csv.Error as error:
        raise RowError(f"the first line is not a CSV header ({error})") from None
    reader.fieldnames = header
    if header[: len(TWIN_CITIES_COLUMNS)] == TWIN_CITIES_COLUMNS:
        parse = _twin_cities_row
    elif all(column in header for column in NATIVE_REQUIRED):
        parse = _native_row
    else:
        raise RowError(
            "unrecognised header: expected twin_cities.csv's "
            f"{','.join(TWIN_CITIES_COLUMNS)} or {','.join(NATIVE_REQUIRED)},since,status,source"
        )
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # a field past the csv module's limit, a stray quote
            report.rows_read += 1
            report.rejected.append((reader.line_num, f"not a CSV row ({error})"))
            continue
        report.rows_read += 1
        line = reader.line_num
        try:
            if None in record:
                raise RowError("more fields than the header names")
            yield parse(line, record)
        except RowError as error:
            report.rejected.append((line, str(error)))


def _text(record: dict, column: str, required: bool = True) -> str | None:
    value = (record.get(column) or "").strip()
    if not value:
        if required:
            raise RowError(f"{column} is empty")
        return None
    if len(value) > MAX_NAME_CHARS:
        raise RowError(f"{column} is longer than {MAX_NAME_CHARS} characters")
    if any(ord(ch) < 32 for ch in value):
        raise RowError(f"{column} contains control characters")
    return value


def _coordinate(record: dict, column: str, limit: float) -> float | None:
    raw = (record.get(column) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RowError(f"{column} is not a number: {raw[:40]!r}") from None
    if not -limit <= value <= limit or value != value:
        raise RowError(f"{column} is out of range: {raw[:40]!r}")
    return value


def _side(record: dict, name: str, country: str, lat: str, lng: str) -> Side:
    latitude, longitude = _coordinate(record, lat, 90), _coordinate(record, lng, 180)
    if (latitude is None) != (longitude is None):
        raise RowError(f"{lat} and {lng} go together")
    return Side(_text(record, name), _text(record, country), latitude, longitude)


def _twin_cities_row(line: int, record: dict) -> Row:
    return Row(
        line,
        _side(record, "city1", "country1", "lat1", "lng1"),
        _side(record, "city2", "country2", "lat2", "lng2"),
    )


def _native_row(line: int, record: dict) -> Row:
    since_text = _text(record, "since", required=False)
    since = None
    if since_text:
        if not since_text.isdigit():
            raise RowError(f"since is not a year: {since_text[:40]!r}")
        since = int(since_text)
        if not EARLIEST_YEAR <= since <= datetime.now(UTC).year:
            raise RowError(f"since is not a plausible year: {since}")
    status = (_text(record, "status", required=False) or "active").lower()
    if status not in PARTNERSHIP_STATUSES:
        raise RowError(f"status must be one of {', '.join(PARTNERSHIP_STATUSES)}")
    return Row(
        line,
        _side(record, "city_a", "country_a", "lat_a", "lng_a"),
        _side(record, "city_b", "country_b", "lat_b", "lng_b"),
        since=since,
        status=status,
        source=_text(record, "source", required=False),
        notes=_text(record, "notes", required=False),
    )


# --- resolving ----------------------------------------------------------------------------


@dataclass(slots=True)
class Place:
    id: int
    country_code: str
    latitude: float
    longitude: float
    population: int
    folded: str


class Resolver:
    """Finds the directory city a (name, country, coordinates) means, creating it if needed."""

    def __init__(self, session: Session, report: ImportReport):
        self.session = session
        self.report = report
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
            )
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
            self.report.cities_matched += 1
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
        self.report.cities_created += 1
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


# --- writing ------------------------------------------------------------------------------


def import_partnerships(
    session: Session,
    text: str,
    source: str,
    progress: Callable[[int], None] | None = None,
    commit: Callable[[], None] | None = None,
) -> ImportReport:
    """Import every good row. ``commit`` is called after each batch, so a long import keeps
    what it has done if stopped; a row is written whole or not at all."""
    report = ImportReport()
    resolver = Resolver(session, report)
    existing = {
        (a, b) for a, b in session.execute(select(Partnership.city_a_id, Partnership.city_b_id))
    }
    pending: list[dict] = []

    def flush() -> None:
        if not pending:
            return
        created = session.execute(
            insert(Partnership).returning(
                Partnership.id,
                Partnership.city_a_id,
                Partnership.city_b_id,
                Partnership.since,
                Partnership.status,
                Partnership.source,
                Partnership.notes,
            ),
            pending,
        ).all()
        publish_many(
            session,
            Base.metadata,
            "directory.partnership_changed",
            [
                {
                    "change": "created",
                    "partnership": {
                        "id": row[0],
                        "city_ids": [row[1], row[2]],
                        "since": row[3],
                        "status": row[4],
                        "source": row[5],
                        "notes": row[6],
                    },
                }
                for row in created
            ],
        )
        bump_version(session)
        pending.clear()
        if commit is not None:
            commit()

    rows = []
    # First pass: every place the file names exists afterwards (matched or created).
    for row in _rows_with_progress(read_rows(text, report), progress):
        try:
            # Both sides are checked before anything is written for the row.
            resolver.find(row.a)
            resolver.find(row.b)
        except RowError as error:
            report.rejected.append((row.line, str(error)))
            continue
        resolver.find_or_create(row.a)
        resolver.find_or_create(row.b)
        rows.append(row)
    # Second pass: resolve again against the complete set of places, exactly as a re-import
    # of the same file will, so that importing twice changes nothing.
    for row in rows:
        a, b = resolver.find_existing(row.a), resolver.find_existing(row.b)
        if a == b:
            report.rejected.append((row.line, "both sides are the same city"))
            continue
        pair = (min(a, b), max(a, b))
        if pair in existing:
            report.partnerships_already_present += 1
            continue
        existing.add(pair)
        pending.append(
            {
                "city_a_id": pair[0],
                "city_b_id": pair[1],
                "since": row.since,
                "status": row.status,
                "source": row.source or source,
                "notes": row.notes,
            }
        )
        report.partnerships_created += 1
        if len(pending) >= BATCH_ROWS:
            flush()
    flush()
    report.rejected.sort()
    return report


def _rows_with_progress(
    rows: Iterable[Row], progress: Callable[[int], None] | None
) -> Iterator[Row]:
    for row in rows:
        yield row
        if progress is not None:
            progress(1)
