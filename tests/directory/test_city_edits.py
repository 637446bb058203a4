"""Staff correct a city: its names, region, population and coordinates, checked; each edit is
on the audit log under their name, announced with a new directory version, and City Search
finds the city by its new names once its index is loaded again."""

import json

import pytest
from sqlalchemy import select, text

from services.directory.city_edits import city_record, update_city
from services.directory.index_version import current_version
from services.directory.models import audit_log
from services.directory.search import search
from services.directory.search_index import load_index
from shared.actor import acting_as, staff_actor
from shared.db import make_session_factory, session_scope
from shared.errors import InvalidInput, NotFound
from tests.conftest import add_test_cities

EDITOR = staff_actor(7, "Eve Editor", "eve@example.org")


@pytest.fixture
def directory(clean_databases):
    engine = clean_databases["directory"]
    [bombay] = add_test_cities(engine, [("Bombay", "IN", 19.07, 72.88, 12_000_000)])
    return make_session_factory(engine), bombay


def test_an_edit_changes_names_and_facts_and_is_on_record_under_the_editors_name(directory):
    sessions, bombay = directory
    with session_scope(sessions) as session:
        version = current_version(session)
    with acting_as(EDITOR), session_scope(sessions) as session:
        record = update_city(
            session,
            bombay,
            {
                "name": "Mumbai",
                "alternate_names": ["Bombay", "Bombaim", "bombay"],
                "region": "Maharashtra",
                "population": 12_442_373,
                "latitude": 19.0728,
                "longitude": 72.8826,
            },
        )
    assert record["name"] == "Mumbai"
    assert record["alternate_names"] == ["Bombay", "Bombaim"]  # "bombay" folds like "Bombay"
    assert (record["region"], record["population"]) == ("Maharashtra", 12_442_373)
    with session_scope(sessions) as session:
        assert city_record(session, bombay) == record
        assert current_version(session) == version + 1
        [entry] = session.execute(select(audit_log)).mappings().all()
        announced = session.execute(
            text("SELECT payload FROM outbox_events WHERE event_type = 'directory.cities_changed'")
        ).all()
        index = load_index(session)
    assert (entry["action"], entry["object_kind"], entry["object_id"]) == (
        "city.updated",
        "city",
        str(bombay),
    )
    assert entry["actor_id"] == "staff:7" and entry["actor_name"].startswith("Eve Editor")
    assert entry["summary"]["changes"]["name"] == {"before": "Bombay", "after": "Mumbai"}
    [(payload,)] = announced
    # A JSON column read by plain SQL: decoded by PostgreSQL's driver, text on SQLite.
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload["cities"] == [{"id": bombay, "name": "Mumbai", "country_code": "IN"}]
    for typed in ("Mumbai", "Bombaim", "bombay"):
        [first, *_] = search(index, typed, None, 5, "US")["results"]
        assert (first["id"], first["name"], first["region"]) == (bombay, "Mumbai", "Maharashtra")


def test_an_edit_that_changes_nothing_is_not_announced_or_recorded(directory):
    sessions, bombay = directory
    with session_scope(sessions) as session:
        update_city(session, bombay, {"population": 12_000_000, "name": "Bombay"})
    with session_scope(sessions) as session:
        assert session.execute(select(audit_log)).all() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"latitude": 90.5},
        {"latitude": -91},
        {"longitude": 180.01},
        {"longitude": float("nan")},
        {"latitude": "19"},
        {"population": -1},
        {"population": 1.5},
        {"population": True},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "a\u0000b"},
        {"name": "\ufdfa" * 20},
        {"alternate_names": "Bombay"},
        {"alternate_names": [""]},
        {"region": 12},
        {"country_code": "FR"},
        {},
    ],
)
def test_bad_values_are_refused_and_nothing_changes(directory, changes):
    sessions, bombay = directory
    with pytest.raises(InvalidInput), session_scope(sessions) as session:
        update_city(session, bombay, changes)
    with session_scope(sessions) as session:
        record = city_record(session, bombay)
        assert session.execute(select(audit_log)).all() == []
    assert (record["name"], record["latitude"], record["population"]) == (
        "Bombay",
        19.07,
        12_000_000,
    )


def test_an_unknown_city_is_not_found(directory):
    sessions, _bombay = directory
    with pytest.raises(NotFound), session_scope(sessions) as session:
        update_city(session, 999_999, {"population": 1})
