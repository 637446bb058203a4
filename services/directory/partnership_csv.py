"""Reading partnership CSV files: the real twin_cities.csv format
(``city1,country1,lat1,lng1,city2,country2,lat2,lng2``) and a native format
(``city_a,country_a,city_b,country_b,since,status,source`` with optional ``lat_a,lng_a,
lat_b,lng_b`` and ``notes``), into ``Row``s of two ``Side``s.

A malformed row is reported with its line number and never stops the reading; only a header
of neither format refuses the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.directory.models import PARTNERSHIP_STATUSES
from services.directory.partnerships import EARLIEST_YEAR

MAX_NAME_CHARS = 200
TWIN_CITIES_COLUMNS = ["city1", "country1", "lat1", "lng1", "city2", "country2", "lat2", "lng2"]
NATIVE_REQUIRED = ["city_a", "country_a", "city_b", "country_b"]


class RowError(ValueError):
    """Why one row cannot be imported."""


@dataclass
class Side:
    """One city of a row, as the file spells it."""

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
class ReadingReport:
    """What reading found: every data row counted, the malformed ones with their reasons."""

    rows_read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def read_rows(text: str, report: ReadingReport) -> Iterator[Row]:
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
