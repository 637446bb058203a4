"""``commit_in_flight``: a COMMIT sent without waiting for its answer ends where psycopg's (or
SQLite's) own ``commit()`` ends, answer and errors alike, so a driver upgrade that changes
how a commit is done fails here."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.db import commit_in_flight

PARENT = text("INSERT INTO commit_probe_parents (id) VALUES (:id)")
CHILD = text("INSERT INTO commit_probe_children (id, parent_id) VALUES (:id, :parent)")


@pytest.fixture
def probe(engines) -> Iterator[Engine]:
    """Two scratch tables in a service's database; a child's parent is checked at commit."""
    engine = engines["notifier"]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE commit_probe_parents (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE commit_probe_children (id INTEGER PRIMARY KEY, parent_id INTEGER "
                "REFERENCES commit_probe_parents (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    yield engine
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE commit_probe_children"))
        conn.execute(text("DROP TABLE commit_probe_parents"))


def children(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT id FROM commit_probe_children ORDER BY id")).scalars()
        )


def test_a_commit_in_flight_commits_and_leaves_the_connection_as_a_commit_would(probe):
    with probe.connect() as conn:
        conn.execute(PARENT, {"id": 1})
        conn.execute(CHILD, {"id": 1, "parent": 1})
        answer = commit_in_flight(conn)
        answer()
        assert not conn.in_transaction()
        assert children(probe) == [1]  # seen by another connection: committed
        # The connection goes on as after commit(): a new transaction, which rolls back.
        conn.execute(CHILD, {"id": 2, "parent": 1})
        conn.rollback()
        driver = conn.connection.driver_connection
        if hasattr(driver, "pgconn"):
            assert driver.info.transaction_status.name == "IDLE"
    assert children(probe) == [1]


def test_a_commit_the_database_refuses_raises_as_commit_does_when_its_answer_is_read(probe):
    def attempt(finish, parent: int) -> tuple[type, bool]:
        """An orphan committed by ``finish``: what it raised, and whether the connection
        then takes a new transaction."""
        with probe.connect() as conn:
            conn.execute(CHILD, {"id": parent, "parent": 99})
            with pytest.raises(IntegrityError) as refused:
                finish(conn)
            conn.rollback()
            try:
                conn.execute(PARENT, {"id": parent})
                conn.commit()
            except DBAPIError:
                return type(refused.value.orig), False
            return type(refused.value.orig), True

    by_commit = attempt(lambda conn: conn.commit(), 1)
    in_flight = attempt(lambda conn: commit_in_flight(conn)(), 2)  # refused in its answer
    assert in_flight == by_commit
    assert children(probe) == []
