"""SQLite writers take turns: a writer waiting for the lock gets it as soon as the holder
commits, and one that waits too long fails as any failed statement does (callers retry on
SQLAlchemy's OperationalError)."""

import threading

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from shared import db


@pytest.fixture
def engine(tmp_path):
    made = db.make_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE notes (body TEXT)"))
    yield made
    made.dispose()


def test_a_waiting_writer_writes_once_the_holder_commits(engine):
    holder = engine.connect()
    holder.begin()
    holder.execute(text("INSERT INTO notes VALUES ('first')"))
    written = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes VALUES ('second')"))
        written.set()

    waiting = threading.Thread(target=write)
    waiting.start()
    assert not written.wait(0.2), "it wrote while another connection held the lock"
    holder.commit()
    holder.close()
    waiting.join(timeout=10)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM notes ORDER BY rowid")).scalars().all() == [
            "first",
            "second",
        ]


def test_a_writer_that_waits_too_long_fails_with_sqlalchemys_error(engine, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.1)
    holder = engine.connect()
    holder.begin()
    holder.execute(text("INSERT INTO notes VALUES ('held')"))
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="locked"), engine.begin() as conn:
            conn.execute(text("INSERT INTO notes VALUES ('late')"))
    finally:
        holder.rollback()
        holder.close()
    # The connection that gave up waits as long as ever again.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes VALUES ('later')"))
        busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert busy == 100
