"""Fixtures: real Redis and real databases (see ``tests/backends.py``), migrated once per run;
the real workers and relay as subprocesses; the gateway app in process, calling them."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, MetaData, text

from shared.db import make_engine
from shared.errors import ServiceError
from shared.migrations import upgrade
from shared.routing import SERVICES
from shared.rpc import ServiceClient
from shared.settings import CommonSettings, EnvReader
from tests.backends import database_backends, redis_backend
from tests.mail_sink import MailSink
from tests.stack import Stack, free_port, wait_for

ADMIN_TOKEN = "test-admin-token-0123456789"
METRICS_TOKEN = "test-metrics-token-0123456789"
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@dataclass
class Backends:
    redis_url: str
    database_urls: dict[str, str]
    # A directory database of its own, loaded once with GeoNames and twin_cities.csv.
    full_directory_url: str


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


@pytest.fixture(scope="session")
def backends(request, tmp_path_factory) -> Iterator[Backends]:
    tmp = tmp_path_factory.mktemp("backends")
    with redis_backend(tmp) as redis_found, database_backends(tmp) as (urls, described):
        _say(request.config, f"tests use {redis_found.description}")
        _say(request.config, f"tests use {described}")
        for name, url in urls.items():
            package = importlib.import_module(f"services.{name.removesuffix('_full')}")
            upgrade(Path(package.__file__).parent / "migrations", url)
        full = urls.pop("directory_full")
        yield Backends(redis_found.url, urls, full)


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailSink]:
    """The SMTP server the stack's notifier sends to, for the whole session."""
    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_sink(mail_server) -> MailSink:
    """The session's SMTP server, holding only what this test sends: tests use the same
    addresses ("ada@example.org"), and a mail an earlier test left there was taken for this
    one's (its link belonging to a subscriber long gone)."""
    mail_server.clear()
    return mail_server


def stack_environment(
    redis_url: str, database_urls: dict[str, str], smtp_url: str, data_dir: Path
) -> dict[str, str]:
    """The environment every process of a test stack runs with."""
    env = dict(os.environ)
    env.update(
        ENVIRONMENT="test",
        DATA_DIR=str(data_dir),
        REDIS_URL=redis_url,
        LOG_FORMAT="json",
        LOG_LEVEL="info",
        # Short enough that a message held by a killed worker comes back within a test.
        TASK_VISIBILITY_TIMEOUT="20",
        WORKER_CONCURRENCY="2",
        ADMIN_TOKEN=ADMIN_TOKEN,
        METRICS_TOKEN=METRICS_TOKEN,
        # The tests' feed server is on 127.0.0.1.
        BLOG_ALLOW_PRIVATE_FEEDS="1",
        # ... and plays Medium (a publication's custom domain); feeds on "localhost" do not.
        MEDIUM_CUSTOM_DOMAINS="127.0.0.1",
        SMTP_URL=smtp_url,
        SECRET_KEY="test-secret-key-for-signed-links",
        PUBLIC_BASE_URL="http://sistercities.test",
        DONATE_URL="https://donate.sistercities.test/",
        PYTHONUNBUFFERED="1",
        # Tests send many requests from one address; tests/site/test_security.py checks
        # the limits themselves.
        SEARCH_RATE_LIMIT="100000/minute",
        SUBSCRIBE_RATE_LIMIT="100000/minute",
        SIGN_IN_RATE_LIMIT="100000/minute",
        # Every test client is 127.0.0.1; tests/integration/test_staff_end_to_end.py checks
        # the per-address limit, tests/staff/test_sign_in.py both.
        STAFF_SIGN_IN_CLIENT_LIMIT="100000/minute",
    )
    for service, url in database_urls.items():
        env[f"{service.upper()}_DATABASE_URL"] = url
    return env


@pytest.fixture(scope="session")
def stack_env(backends, mail_server, tmp_path_factory) -> dict[str, str]:
    env = stack_environment(
        backends.redis_url,
        backends.database_urls,
        mail_server.url,
        tmp_path_factory.mktemp("data"),
    )
    # Where hubs reach the gateway's WebSub callbacks: a port kept for the gateway that
    # tests/integration/test_websub_end_to_end.py serves over HTTP.
    env["WEBSUB_BASE_URL"] = f"http://127.0.0.1:{free_port()}"
    return env


@pytest.fixture(scope="session")
def common_settings(stack_env) -> CommonSettings:
    env = EnvReader(stack_env)
    return CommonSettings(**CommonSettings.read(env))


@pytest.fixture(scope="session")
def redis_client(backends) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(backends.redis_url, socket_timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="session")
def services(common_settings, redis_client) -> ServiceClient:
    """Calls services' tasks by name, as the gateway does."""
    return ServiceClient(redis_client, timeout=2.0)


def wait_until_answers(services: ServiceClient, service: str, timeout: float = 30.0) -> None:
    def answers() -> bool:
        try:
            services.call(f"{service}.ping_service", timeout=0.5)
            return True
        except ServiceError:
            return False

    wait_for(answers, timeout=timeout, interval=0.1, what=f"the {service} worker to answer")


# The session's stack while it runs: each test's teardown lets it finish what the test set in
# motion before emptying the tables (``clean_databases``).
RUNNING_STACKS: list[Stack] = []


@pytest.fixture(scope="session")
def stack(stack_env, services, tmp_path_factory) -> Iterator[Stack]:
    """Three workers and the relay, running for the whole session."""
    running = Stack(stack_env, tmp_path_factory.mktemp("logs"))
    for service in SERVICES:
        running.start_worker(service)
    running.start("relay", "relay")
    try:
        for service in SERVICES:
            wait_until_answers(services, service)
        RUNNING_STACKS.append(running)
        yield running
    finally:
        if running in RUNNING_STACKS:
            RUNNING_STACKS.remove(running)
        running.stop_all()


@pytest.fixture(scope="session")
def engines(backends) -> Iterator[dict[str, Engine]]:
    made = {service: make_engine(url) for service, url in backends.database_urls.items()}
    yield made
    for engine in made.values():
        engine.dispose()


KEEP_TABLES = {"alembic_version", "directory_version"}


def empty_tables(engine: Engine) -> None:
    """Delete every row but the schema's and the index's version numbers (the tables stay)."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name not in KEEP_TABLES:
                conn.execute(table.delete())
        if "directory_version" in metadata.tables:
            # Workers' search indexes must forget what was deleted.
            conn.execute(text("UPDATE directory_version SET version = version + 1"))


@pytest.fixture
def clean_databases(request, engines, redis_client) -> Iterator[dict[str, Engine]]:
    """Every service database empty after the test (the schema stays), and the gateway's
    cached answers forgotten before and after it: an answer cached by the test before would
    otherwise still be served (a list of posts that no longer exist) until a change moved its
    service's generation, and a test that changes nothing moves none."""
    app = request.getfixturevalue("gateway_app") if "gateway_app" in request.fixturenames else None
    forget_cached_answers(redis_client, app)
    yield engines
    if any(stack.running(*SERVICES, "relay") for stack in RUNNING_STACKS):
        wait_until_quiet(engines, redis_client)
    for engine in engines.values():
        empty_tables(engine)
    forget_cached_answers(redis_client, app)


def wait_for_search_index(services, timeout: float = 60.0) -> None:
    """The directory's interactive worker searches the directory as it is now. A search by
    name cannot tell: on SQLite every test's emptied tables give ids from 1 again, so an
    earlier test's index finds a city of the same name under the same id."""

    def caught_up() -> bool:
        state = services.call("directory.index_version")
        return state["index"] >= state["directory"]

    wait_for(caught_up, timeout=timeout, interval=0.1, what="the directory's search index")


def wait_for_events_relayed(engines: dict[str, Engine], timeout: float = 30.0) -> None:
    """Every event the services' outboxes hold sent (and the cache generations they move
    moved): the world a test sets up has stopped changing under it."""
    wait_for(
        lambda: not unsent_events(engines),
        timeout=timeout,
        what="the outboxes' events to be relayed",
    )


def wait_until_quiet(engines: dict[str, Engine], redis_client, timeout: float = 60.0) -> None:
    """Nothing a test set in motion is still under way: every outbox's events relayed, every
    queue empty, nothing taken and not yet acknowledged. An event handled after the test's
    tables were emptied is the next test's (a story announced twice; a partnership's news
    already there under a reused id): two tests failed so on a clean clone."""
    from shared.queues import queue_lengths

    def quiet() -> bool:
        lengths = queue_lengths(redis_client)
        busy = any(lengths["waiting"].values()) or lengths["unacknowledged"]
        return not busy and not unsent_events(engines)

    wait_for(quiet, timeout=timeout, what="the stack to finish what the test set in motion")


def unsent_events(engines: dict[str, Engine]) -> dict[str, int]:
    """Events each service's outbox holds and has not sent, by service."""
    counts = {}
    for service, engine in engines.items():
        with engine.connect() as conn:
            count = conn.execute(
                text("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL")
            ).scalar_one()
        if count:
            counts[service] = count
    return counts


def forget_cached_answers(redis_client, gateway_app=None) -> None:
    """Every gateway's cached answers stale (a new generation), this process's at once."""
    from shared.routing import GENERATION_KEY

    for service in SERVICES:
        redis_client.incr(GENERATION_KEY.format(service))
    if gateway_app is not None:
        gateway_app.extensions["sistercities"].cache.forget_local()


@pytest.fixture(scope="session")
def gateway_app(stack_env, backends):
    from services.gateway.app import create_app
    from services.gateway.config import GatewaySettings

    return create_app(GatewaySettings.from_env(stack_env))


@pytest.fixture
def client(gateway_app):
    return gateway_app.test_client()


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def count_rows(engine: Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


TWIN_CITIES = SHARED_DIR / "data" / "twin_cities.csv"
needs_twin_cities = pytest.mark.skipif(
    not TWIN_CITIES.exists(), reason=f"the real data set is not at {TWIN_CITIES}"
)


@dataclass
class FullDirectory:
    engine: Engine
    cities_report: object
    partnerships_report: object
    index: object


@pytest.fixture(scope="session")
def full_directory(backends) -> Iterator[FullDirectory]:
    """GeoNames' cities500 and the real twin_cities.csv, imported once per run (about 70 s
    on SQLite or PostgreSQL)."""
    if not TWIN_CITIES.exists():
        pytest.skip(f"the real data set is not at {TWIN_CITIES}")
    from services.directory.cities_import import import_cities
    from services.directory.partnerships_import import import_partnerships
    from services.directory.search_index import load_index
    from shared.db import make_session_factory, session_scope

    engine = make_engine(backends.full_directory_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        cities = import_cities(session)
    with sessions() as session:
        partnerships = import_partnerships(
            session,
            TWIN_CITIES.read_text(encoding="utf-8"),
            "twin_cities.csv",
            commit=session.commit,
        )
        session.commit()
    with sessions() as session:
        index = load_index(session)
    yield FullDirectory(engine, cities, partnerships, index)
    engine.dispose()


def add_test_cities(
    engine: Engine, places: list[tuple[str, str, float, float, int]], announce: bool = False
) -> list[int]:
    """Cities made by a test (name, country, latitude, longitude, population), searchable by
    their names: the workers' search index reloads when the version moves. ``announce``: as
    staff's changes are, with ``directory.cities_changed`` (the blog links its stories again)."""
    from services.directory.cities_import import city_names
    from services.directory.index_version import announce_cities_changed, bump_version
    from services.directory.models import City, CityName
    from shared.db import make_session_factory, session_scope

    ids = []
    with session_scope(make_session_factory(engine)) as session:
        for name, country_code, latitude, longitude, population in places:
            city = City(
                name=name,
                country_code=country_code,
                latitude=latitude,
                longitude=longitude,
                population=population,
                source="staff",
            )
            city.names = [
                CityName(name=original, folded=folded, kind=kind)
                for original, folded, kind in city_names(name, [])
            ]
            session.add(city)
            session.flush()
            ids.append(city.id)
        if announce:
            announce_cities_changed(session, {"created": len(ids)})
        else:
            bump_version(session)
    return ids
