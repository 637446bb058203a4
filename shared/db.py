"""Database helpers shared by the services: engines that behave alike on SQLite and PostgreSQL,
a session scope that commits or rolls back as one unit, and a commit sent without waiting
for its answer."""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import sqlalchemy.exc
from psycopg import pq
from sqlalchemy import Connection, DateTime, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# How long a statement waits for another connection's write lock before it fails.
SQLITE_BUSY_SECONDS = 30
WRITE_LOCK_RETRY_SECONDS = 0.001


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        event.listen(engine, "connect", _sqlite_on_connect)
        # pysqlite's own transaction handling defers BEGIN; take it over so that a
        # transaction starts where SQLAlchemy says it does (needed for SAVEPOINTs).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    # pre_ping: a worker that outlives a database restart reconnects instead of failing once.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_begin(conn) -> None:
    # A transaction that reads and then writes must hold the write lock from its start: in
    # WAL mode, upgrading a read snapshot another connection has since written past fails at
    # once ("database is locked"), whatever the busy timeout. Pure readers opt out (see
    # ``read_only``) so they never wait. A connection asked to autocommit gets no BEGIN.
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    mode = options.get("sqlite_begin", "IMMEDIATE")
    if mode == "IMMEDIATE":
        _take_write_lock(conn.connection.driver_connection)
    else:
        conn.exec_driver_sql(f"BEGIN {mode}")


def _take_write_lock(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried every millisecond while another connection writes.

    SQLite's own wait (the busy timeout) sleeps longer and longer between tries, up to 100 ms,
    while a writer with a stream of work (the background lane's batches of events) takes the
    lock back within a few milliseconds of each commit: a visitor's write waiting so could
    miss every gap for seconds. Trying often, it takes the first gap."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    # As SQLAlchemy reports a failed statement: callers retry on its class.
                    raise sqlalchemy.exc.OperationalError("BEGIN IMMEDIATE", None, error) from None
            time.sleep(WRITE_LOCK_RETRY_SECONDS)
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}")


def read_only(engine: Engine) -> Engine:
    """The same engine for transactions that only read (no write lock on SQLite)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the web and worker processes read while one of them writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def commit_in_flight(connection: Connection) -> Callable[[], None]:
    """Send the COMMIT of ``connection``'s transaction and return as soon as it has left,
    without its answer; the function returned waits for the answer (and raises what a
    ``commit()`` would have raised). It is for a step that must follow a commit as closely as
    it can (the digest ledger's mark and a message's last line, ``services/notifier/ledger.py``):
    once COMMIT has left, the server commits whether or not this process lives to read the
    answer, so waiting for it (the server's flush to disk and a round trip) only widens the
    gap between the two.

    On PostgreSQL (psycopg) the COMMIT goes through psycopg's libpq wrapper, as psycopg's own
    ``commit()`` sends it, and its answer is read the same way; the connection is then where
    a ``commit()`` would have left it (``tests/shared/test_db.py`` compares them). Elsewhere
    (SQLite commits inside this process) it is a plain commit, already answered."""
    driver = connection.connection.driver_connection
    pgconn = driver.pgconn if isinstance(driver, psycopg.Connection) else None
    if pgconn is None or pgconn.transaction_status != pq.TransactionStatus.INTRANS:
        connection.commit()
        return _answered
    try:
        pgconn.send_query(b"COMMIT")
        while pgconn.flush():  # a non-blocking connection: the rest waits for the socket
            _wait_for(pgconn, select.POLLOUT)
    except psycopg.Error as error:
        raise _lost(connection, error) from None
    return lambda: _commit_answer(connection, pgconn)


def _answered() -> None:
    """A commit that was answered before it returned."""


def _commit_answer(connection: Connection, pgconn: pq.abc.PGconn) -> None:
    results = []
    try:
        while True:
            pgconn.consume_input()
            if pgconn.is_busy():
                _wait_for(pgconn, select.POLLIN)
                continue
            if (result := pgconn.get_result()) is None:
                break
            results.append(result)
    except psycopg.Error as error:
        raise _lost(connection, error) from None
    # SQLAlchemy's transaction ends too; psycopg, finding none open, sends nothing.
    connection.commit()
    for result in results:
        if result.status != pq.ExecStatus.COMMAND_OK:
            error = psycopg.errors.error_from_result(result)
            raise exc.DBAPIError.instance("COMMIT", {}, error, psycopg.Error) from None


def _wait_for(pgconn: pq.abc.PGconn, event_mask: int) -> None:
    poll = select.poll()
    poll.register(pgconn.socket, event_mask)
    poll.poll()


def _lost(connection: Connection, error: psycopg.Error) -> exc.DBAPIError:
    """The connection broke mid-commit: whether it committed is unknown, and the connection
    is done for."""
    connection.invalidate(error)
    return exc.DBAPIError.instance("COMMIT", {}, error, psycopg.Error, connection_invalidated=True)


class UTCDateTime(TypeDecorator):
    """A moment in UTC, aware on the way out on both backends (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous: give a zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
