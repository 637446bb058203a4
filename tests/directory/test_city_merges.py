"""Two records of one place made one: the duplicate's partnerships move to the survivor (none
twice, none between the two), its names are the survivor's, and it stays a tombstone that
leads to the survivor and that City Search never returns; announced and on record."""

import json

import pytest
from sqlalchemy import select, text

from services.directory.city_details import get_city
from services.directory.city_edits import city_record, update_city
from services.directory.city_merges import merge_cities
from services.directory.models import Partnership, audit_log
from services.directory.partnerships import create_partnership
from services.directory.search import search
from services.directory.search_index import load_index
from shared.actor import acting_as, staff_actor
from shared.db import make_session_factory, session_scope
from shared.errors import Conflict, InvalidInput, NotFound, ServiceError
from tests.conftest import add_test_cities

EDITOR = staff_actor(7, "Eve Editor", "eve@example.org")


@pytest.fixture
def places(clean_databases):
    engine = clean_databases["directory"]
    ids = add_test_cities(
        engine,
        [
            ("Bombay", "IN", 19.07, 72.88, 100),
            ("Mumbai", "IN", 19.08, 72.88, 12_000_000),
            ("Kuopio", "FI", 62.89, 27.68, 120_000),
            ("Lyon", "FR", 45.76, 4.84, 500_000),
            ("Old Bombay", "IN", 19.0, 72.8, 10),
        ],
    )
    sessions = make_session_factory(engine)
    bombay, mumbai, kuopio, lyon, old = ids
    with session_scope(sessions) as session:
        pairs = {
            "bombay-kuopio": create_partnership(session, bombay, kuopio, since=1990).id,
            "bombay-lyon": create_partnership(session, bombay, lyon).id,
            "bombay-mumbai": create_partnership(session, bombay, mumbai).id,
            "mumbai-lyon": create_partnership(session, mumbai, lyon, since=1970).id,
        }
        merge_cities(session, old, bombay)  # merged before: leads to Bombay, then to Mumbai
        session.execute(text("DELETE FROM outbox_events"))
        session.execute(text("DELETE FROM audit_subjects"))
        session.execute(text("DELETE FROM audit_log"))
    return (
        sessions,
        dict(zip(("bombay", "mumbai", "kuopio", "lyon", "old"), ids, strict=True)),
        pairs,
    )


def test_partnerships_move_once_and_the_duplicate_leads_to_the_survivor(places):
    sessions, city, pairs = places
    with acting_as(EDITOR), session_scope(sessions) as session:
        answer = merge_cities(session, city["bombay"], city["mumbai"])
    assert answer == {
        "merged": city["bombay"],
        "into": city["mumbai"],
        "partnerships_moved": [pairs["bombay-kuopio"]],
        "partnerships_removed": [pairs["bombay-lyon"], pairs["bombay-mumbai"]],
    }
    with sessions() as session:
        stored = {
            row.id: (row.city_a_id, row.city_b_id, row.since)
            for row in session.scalars(select(Partnership))
        }
        assert stored == {
            pairs["bombay-kuopio"]: (*sorted((city["mumbai"], city["kuopio"])), 1990),
            pairs["mumbai-lyon"]: (*sorted((city["mumbai"], city["lyon"])), 1970),
        }
        page = get_city(session, city["bombay"], "name")
        assert page["id"] == city["mumbai"] and page["merged_into"] == city["mumbai"]
        assert [sister["name"] for sister in page["sisters"]] == ["Kuopio", "Lyon"]
        assert "merged_into" not in get_city(session, city["mumbai"], "name")
        # The record merged into Bombay before leads to Mumbai now, in one step.
        assert city_record(session, city["old"])["merged_into"] == city["mumbai"]
        assert get_city(session, city["old"])["id"] == city["mumbai"]
        assert city_record(session, city["mumbai"])["alternate_names"] == ["Bombay", "Old Bombay"]
        events = session.execute(
            text("SELECT event_type, payload FROM outbox_events ORDER BY id")
        ).all()
        [entry] = session.execute(select(audit_log)).mappings().all()
        subjects = set(session.execute(text("SELECT object_kind, object_id FROM audit_subjects")))
        index = load_index(session)
    kinds = [kind for kind, _payload in events]
    assert kinds.count("directory.partnership_changed") == 3
    assert kinds[-2:] == ["directory.cities_merged", "directory.cities_changed"]
    # A JSON column read by plain SQL: decoded by PostgreSQL's driver, text on SQLite.
    merged = events[-2][1]
    merged = json.loads(merged) if isinstance(merged, str) else merged
    assert merged == {"from": city["bombay"], "into": city["mumbai"]}
    assert (entry["action"], entry["object_id"], entry["actor_id"]) == (
        "city.merged",
        str(city["bombay"]),
        "staff:7",
    )
    assert {("city", str(city["mumbai"])), ("partnership", str(pairs["bombay-lyon"]))} <= subjects
    # City Search never returns a merged record: its names find the survivor.
    for typed in ("Bombay", "bombay", "Old Bombay", "Mumbai"):
        found = [result["id"] for result in search(index, typed, None, 10, "US")["results"]]
        assert found[0] == city["mumbai"]
        assert city["bombay"] not in found and city["old"] not in found


def test_a_merge_into_itself_or_a_merged_city_is_refused_and_changes_nothing(places):
    sessions, city, _pairs = places
    with pytest.raises(InvalidInput), session_scope(sessions) as session:
        merge_cities(session, city["mumbai"], city["mumbai"])
    with pytest.raises(Conflict), session_scope(sessions) as session:
        merge_cities(session, city["mumbai"], city["old"])  # old is a tombstone
    with pytest.raises(Conflict), session_scope(sessions) as session:
        merge_cities(session, city["old"], city["mumbai"])
    with pytest.raises(NotFound), session_scope(sessions) as session:
        merge_cities(session, city["mumbai"], 999_999)
    with sessions() as session:
        assert session.execute(text("SELECT count(*) FROM outbox_events")).scalar() == 0
        assert city_record(session, city["mumbai"])["merged_into"] is None
    # A tombstone is neither edited nor given partnerships.
    with pytest.raises(Conflict), session_scope(sessions) as session:
        update_city(session, city["old"], {"population": 5})
    with pytest.raises(ServiceError) as refused, session_scope(sessions) as session:
        create_partnership(session, city["old"], city["kuopio"])
    assert refused.value.code == "conflict"
