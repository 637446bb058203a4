"""Importing partnerships: the real twin_cities.csv once and again, and the native format with
every kind of bad row."""

import csv

import pytest
from sqlalchemy import func, select, text

from services.directory.geography import resolve_country
from services.directory.models import City, Partnership
from services.directory.partnership_csv import RowError
from services.directory.partnerships_import import import_partnerships
from shared.db import make_session_factory
from tests.conftest import TWIN_CITIES, count_rows

pytestmark = pytest.mark.integration


def test_the_real_file_imports_every_good_row(full_directory):
    report = full_directory.partnerships_report
    assert report.rows_read == 25_917
    assert 24_000 < report.partnerships_created < 25_917
    # With GeoNames' cities500 nearly every side is a known place (cities15000 left 9,533 to
    # be created); what is still created gets a region from its coordinates, unless they lie
    # far from any known place of its country (often wrong coordinates in the file).
    assert report.cities_created < 3_000
    with full_directory.engine.connect() as conn:
        created, with_region = conn.execute(
            text("SELECT count(*), count(region) FROM cities WHERE source = 'import'")
        ).one()
    assert created == report.cities_created
    assert with_region > 0.8 * created
    assert report.rows_read == (
        report.partnerships_created + report.partnerships_already_present + len(report.rejected)
    )
    stored = count_rows(full_directory.engine, "SELECT count(*) FROM partnerships")
    assert stored == report.partnerships_created
    # Undirected and stored once: no pair appears in both orders.
    assert (
        count_rows(
            full_directory.engine,
            "SELECT count(*) FROM partnerships p JOIN partnerships q"
            " ON p.city_a_id = q.city_b_id AND p.city_b_id = q.city_a_id",
        )
        == 0
    )


def test_rejected_rows_name_their_line_and_reason(full_directory):
    rejected = dict(full_directory.partnerships_report.rejected)
    assert rejected, "the real file has a few bad rows"
    with TWIN_CITIES.open(encoding="utf-8") as handle:
        lines = {number: row for number, row in enumerate(csv.reader(handle), start=1)}
    for line, reason in rejected.items():
        row = lines[line]
        if reason.endswith("is empty"):
            column = reason.split()[0]
            header = lines[1]
            assert row[header.index(column)].strip() == ""
        else:
            assert reason.startswith(("unknown country", "both sides are the same city"))


def test_importing_the_same_file_again_changes_nothing(full_directory):
    sessions = make_session_factory(full_directory.engine)
    before = count_rows(full_directory.engine, "SELECT count(*) FROM partnerships")
    cities_before = count_rows(full_directory.engine, "SELECT count(*) FROM cities")
    with sessions() as session:
        again = import_partnerships(
            session, TWIN_CITIES.read_text(encoding="utf-8"), "twin_cities.csv"
        )
        session.commit()
    first = full_directory.partnerships_report
    assert again.partnerships_created == 0
    assert again.cities_created == 0
    assert again.partnerships_already_present == (
        first.partnerships_created + first.partnerships_already_present
    )
    assert count_rows(full_directory.engine, "SELECT count(*) FROM partnerships") == before
    assert count_rows(full_directory.engine, "SELECT count(*) FROM cities") == cities_before


def test_minneapolis_and_najaf_are_partners(full_directory):
    with full_directory.engine.connect() as conn:
        pairs = conn.execute(
            text(
                "SELECT a.name, a.country_code, b.name, b.country_code FROM partnerships p"
                " JOIN cities a ON a.id = p.city_a_id JOIN cities b ON b.id = p.city_b_id"
                " WHERE a.name = 'Minneapolis' OR b.name = 'Minneapolis'"
            )
        ).all()
    sisters = {(n1, c1) if n2 == "Minneapolis" else (n2, c2) for n1, c1, n2, c2 in pairs}
    assert ("Najaf", "IQ") in sisters


@pytest.mark.parametrize(
    ("spelling", "codes"),
    [
        ("Northern Ireland, United Kingdom", ("GB",)),
        ("Georgia (country)", ("GE",)),
        ("Martinique, France", ("MQ", "FR")),
        ("Kazakhstah", ("KZ",)),
        ("Bosnia and Hercegovina", ("BA",)),
        ("England", ("GB",)),
        ("Atlantis", ()),
    ],
)
def test_country_spellings_of_real_lists(spelling, codes):
    assert resolve_country(spelling) == codes


def _small_directory(engine) -> dict[str, int]:
    """A few real places, as GeoNames has them."""
    places = {
        "Minneapolis": ("US", 44.98, -93.26, 410_939),
        "Najaf": ("IQ", 32.0, 44.33, 482_576),
        "Tours": ("FR", 47.39, 0.69, 136_463),
    }
    ids = {}
    sessions = make_session_factory(engine)
    with sessions() as session:
        for name, (code, lat, lon, population) in places.items():
            city = City(
                name=name, country_code=code, latitude=lat, longitude=lon, population=population
            )
            session.add(city)
            session.flush()
            ids[name] = city.id
        session.commit()
    from services.directory.cities_import import city_names
    from services.directory.models import CityName

    with sessions() as session:
        for name, city_id in ids.items():
            for original, folded, kind in city_names(name, []):
                session.add(CityName(city_id=city_id, name=original, folded=folded, kind=kind))
        session.commit()
    return ids


NATIVE = """city_a,country_a,city_b,country_b,since,status,source,lat_a,lng_a,lat_b,lng_b
Minneapolis,United States,Najaf,Iraq,2009,active,sample,,,,
Najaf,Iraq,Minneapolis,United States,2009,active,sample,,,,
Minneapolis,United States,Tours,France,1991,,,,,,
Minneapolis,United States,Smallville,United States,1990,active,sample,,,39.1,-94.6
Tours,France,Small-ville,United States,,proposed,,,,39.101,-94.601
Minneapolis,United States,Tours,Atlantis,2000,active,,,,,
Minneapolis,United States,Nowhere Town,United States,2000,active,,,,,
Minneapolis,United States,Tours,France,year two,active,,,,,
Minneapolis,United States,Tours,France,2000,dormant,,,,,
Minneapolis,United States,Tours,France,2000,active,,,,95,10
Minneapolis,United States,Minneapolis,United States,2000,active,,,,,
Minneapolis,United States,Tours,France,2000,active,,,,,,extra
{long},United States,Tours,France,,,,,,,
"""


def test_the_native_format_reports_each_bad_row_and_writes_no_part_of_it(clean_databases):
    engine = clean_databases["directory"]
    ids = _small_directory(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        report = import_partnerships(session, NATIVE.format(long="x" * 300), "test.csv")
        session.commit()
    assert report.rows_read == 13
    assert report.partnerships_created == 4
    assert report.partnerships_already_present == 1  # Najaf-Minneapolis, the other way round
    assert report.cities_created == 1  # Smallville, once under both spellings
    reasons = dict(report.rejected)
    assert reasons == {
        7: "unknown country 'Atlantis'",
        8: "no city 'Nowhere Town' in United States; give its coordinates",
        9: "since is not a year: 'year two'",
        10: "status must be one of active, inactive, proposed",
        11: "lat_b is out of range: '95'",
        12: "both sides are the same city",
        13: "more fields than the header names",
        14: "city_a is longer than 200 characters",
    }
    with sessions() as session:
        stored = session.execute(
            select(
                Partnership.city_a_id,
                Partnership.city_b_id,
                Partnership.since,
                Partnership.status,
                Partnership.source,
            )
        ).all()
        created = session.scalars(select(City).where(City.source == "import")).all()
        assert session.scalar(select(func.count()).select_from(City)) == 4
    assert len(created) == 1 and created[0].name == "Smallville"
    # In Kansas City, on the state line: the region of the nearest known place.
    assert created[0].region in ("Kansas", "Missouri")
    pair = tuple(sorted((ids["Minneapolis"], ids["Najaf"])))
    assert (*pair, 2009, "active", "sample") in stored
    assert any(row[3] == "proposed" and row[4] == "test.csv" for row in stored)
    # Every partnership was announced, once, and the place the directory lacked (stories
    # that name it are linked again).
    events = "SELECT count(*) FROM outbox_events WHERE event_type = :kind"
    assert count_rows(engine, events, kind="directory.partnership_changed") == 4
    assert count_rows(engine, events, kind="directory.cities_changed") == 1


def test_an_unknown_header_is_refused_whole(clean_databases):
    sessions = make_session_factory(clean_databases["directory"])
    with sessions() as session, pytest.raises(RowError, match="unrecognised header"):
        import_partnerships(session, "a,b,c\n1,2,3\n", "bad.csv")
