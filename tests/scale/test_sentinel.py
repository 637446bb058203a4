"""Redis behind Sentinel: the master is killed with SIGKILL in the middle of a run, the
sentinels promote its replica, and the system carries on with nothing lost that it had
acknowledged.

What "acknowledged" can mean here: replication is asynchronous, so a write the old master
took in its last moment may never reach the replica. The system's promises therefore rest on
the databases. A partnership answered 201 is committed in the directory's database; its event
is in the same transaction's outbox, and the relay marks an event sent only once a replica
holds it (``WAIT``), so a failover cannot lose one it marked. So: every 201 is in the
directory once, and every event in its outbox reaches the notifier. A call in flight at the
kill may fail (503) or still be carried out; neither is a 500.
"""

from __future__ import annotations

import importlib
import itertools
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import MetaData, insert, text

from shared.celery_app import make_celery
from shared.db import make_engine
from shared.events import event_tables, utcnow
from shared.migrations import upgrade
from shared.redis_connection import connect
from shared.relay import NotReplicated, OutboxRelay
from shared.routing import SERVICES
from shared.settings import CommonSettings, EnvReader
from tests.conftest import ADMIN_TOKEN, add_test_cities
from tests.scale.sentinel_cluster import MASTER_NAME, SentinelCluster, wait_for_failover
from tests.stack import Stack, free_port, wait_for

pytestmark = pytest.mark.integration

CITIES = [(f"Failover Town {n:02d}", "US", 30.0 + n, -100.0 + n, 10_000 + n) for n in range(30)]
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = SentinelCluster(Path(tmp_path_factory.mktemp("sentinel"))).start()
    yield started
    started.stop()


@dataclass
class SentinelSystem:
    stack: Stack
    base: str
    engines: dict
    city_ids: list[int]


@pytest.fixture(scope="module")
def system(cluster, tmp_path_factory):
    """Gateway, directory and notifier workers and the relay, on SQLite files of their own and
    the Redis the sentinels name."""
    folder = Path(tmp_path_factory.mktemp("sentinel-system"))
    urls = {service: f"sqlite:///{folder / f'{service}.db'}" for service in SERVICES}
    for service, url in urls.items():
        package = importlib.import_module(f"services.{service}")
        upgrade(Path(package.__file__).parent / "migrations", url)
    engines = {service: make_engine(url) for service, url in urls.items()}
    city_ids = add_test_cities(engines["directory"], CITIES)
    port = free_port()
    env = dict(
        os.environ,
        ENVIRONMENT="test",
        DATA_DIR=str(folder / "data"),
        REDIS_URL=cluster.url,
        REDIS_SENTINEL_MASTER=MASTER_NAME,
        LOG_FORMAT="json",
        TASK_VISIBILITY_TIMEOUT="20",
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY="test-secret-key-for-signed-links",
        SMTP_URL="smtp://127.0.0.1:9",
        PORT=str(port),
        GATEWAY_PROCESSES="1",
        GATEWAY_THREADS="8",
        SEARCH_RATE_LIMIT="100000/minute",
        PYTHONUNBUFFERED="1",
        **{f"{service.upper()}_DATABASE_URL": url for service, url in urls.items()},
    )
    stack = Stack(env, folder)
    stack.start("gateway", "gateway")
    stack.start_worker("directory")
    stack.start_worker("notifier")
    stack.start("relay", "relay")
    base = f"http://127.0.0.1:{port}"
    try:
        for service in ("directory", "notifier"):
            wait_for(lambda s=service: _get(f"{base}/readyz/{s}") == 200, timeout=60,
                     interval=0.2, what=f"the {service} worker behind the gateway")  # fmt: skip
        yield SentinelSystem(stack, base, engines, city_ids)
    finally:
        stack.stop_all()
        for engine in engines.values():
            engine.dispose()


def _get(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return 0


@dataclass
class Call:
    at: float
    kind: str  # "create" or "search"
    status: int
    pair: tuple[int, int] | None = None
    partnership_id: int | None = None
    wrong: str | None = None  # for a wrong answer: what was asked and what came first


class Load:
    """Staff adding partnerships and visitors searching, one after the other, until stopped."""

    def __init__(self, system: SentinelSystem):
        self.system = system
        self.calls: list[Call] = []
        self.stopping = threading.Event()
        self.pairs = itertools.combinations(system.city_ids, 2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.session = requests.Session()

    def _run(self) -> None:
        for n, pair in enumerate(self.pairs):
            if self.stopping.is_set():
                return
            self._create(pair)
            self._search(CITIES[n % len(CITIES)][0])

    def _create(self, pair: tuple[int, int]) -> None:
        body = {"city_id": pair[0], "sister_city_id": pair[1], "since": 2001}
        try:
            response = self.session.post(
                f"{self.system.base}/api/v1/admin/partnerships",
                json=body,
                headers=HEADERS,
                timeout=15,
            )
        except requests.RequestException:
            self.calls.append(Call(time.monotonic(), "create", 0, pair))
            return
        created = response.json().get("id") if response.status_code == 201 else None
        self.calls.append(Call(time.monotonic(), "create", response.status_code, pair, created))

    def _search(self, name: str) -> None:
        try:
            response = self.session.get(
                f"{self.system.base}/api/v1/cities", params={"q": name}, timeout=15
            )
            status, wrong = response.status_code, None
            first = response.json()["results"][:1] if status == 200 else None
            if first is not None and [city["name"] for city in first] != [name]:
                status, wrong = -1, f"{name!r} answered {first}"
        except requests.RequestException:
            status = 0
        self.calls.append(Call(time.monotonic(), "search", status, wrong=wrong))

    def successes_since(self, moment: float, kind: str = "create") -> int:
        good = 201 if kind == "create" else 200
        calls = list(self.calls)
        return sum(1 for c in calls if c.at > moment and c.kind == kind and c.status == good)


def explain(system: SentinelSystem, load: Load, since: float) -> str:
    """For a failure: the calls' outcomes since ``since``, and each process's last lines."""
    outcomes = Counter((c.kind, c.status) for c in list(load.calls) if c.at > since)
    tails = {name: system.stack.log(name).splitlines()[-8:] for name in system.stack.processes}
    return f"calls since the kill: {dict(outcomes)}\n" + "\n".join(
        f"--- {name}\n" + "\n".join(lines) for name, lines in tails.items()
    )


def test_a_killed_master_is_replaced_and_nothing_acknowledged_is_lost(cluster, system):
    load = Load(system)
    load.thread.start()
    try:
        wait_for(lambda: load.successes_since(0) >= 15, timeout=60, interval=0.1,
                 what="partnerships to be created before the kill")  # fmt: skip
        old_master = cluster.master_port()
        killed_at = time.monotonic()
        cluster.kill(old_master)

        new_master = wait_for_failover(cluster, old_master)
        promoted_after = time.monotonic() - killed_at
        try:
            wait_for(lambda: load.successes_since(killed_at) >= 15
                     and load.successes_since(killed_at, "search") >= 15, timeout=90,
                     interval=0.1, what="calls to succeed again after the failover")  # fmt: skip
        except AssertionError as error:
            raise AssertionError(f"{error}\n{explain(system, load, killed_at)}") from None
        first_success = min(c.at for c in load.calls if c.at > killed_at and c.status == 201)

        # The old master comes back as the new one's replica: the relay waits for it again.
        cluster.start_data_node(old_master, replica_of=new_master)
        back_at = time.monotonic()
        wait_for(lambda: load.successes_since(back_at) >= 10, timeout=60, interval=0.1,
                 what="more partnerships with the old master back as a replica")  # fmt: skip
    finally:
        load.stopping.set()
        load.thread.join(timeout=30)

    calls = list(load.calls)
    print(
        f"\nfailover: replica promoted {promoted_after:.1f} s after the kill; first 201 "
        f"{first_success - killed_at:.1f} s after it; {len(calls)} calls, "
        f"{sum(c.status in (201, 200) for c in calls)} succeeded, "
        f"{sum(c.status == 503 for c in calls)} answered 503"
    )
    # Never a 500 or a hang: a call that meets the failover is a 503 at worst (or, for a
    # creation whose task ran twice, a 409). Search answers the right city whenever it answers.
    assert {c.status for c in calls if c.kind == "create"} <= {201, 409, 503}, calls
    assert {c.status for c in calls if c.kind == "search"} <= {200, 503}, [
        c.wrong for c in calls if c.wrong
    ]
    assert first_success - killed_at < 30
    assert all(c.status == 201 for c in calls[-10:] if c.kind == "create"), calls[-10:]

    # Every partnership acknowledged with a 201, before and after the kill, is in the
    # directory, once.
    acknowledged = {c.partnership_id: c.pair for c in calls if c.status == 201}
    with system.engines["directory"].connect() as conn:
        stored = {
            row.id: (row.city_a_id, row.city_b_id)
            for row in conn.execute(text("SELECT id, city_a_id, city_b_id FROM partnerships"))
        }
    for partnership_id, pair in acknowledged.items():
        assert tuple(sorted(stored[partnership_id])) == tuple(sorted(pair))
    pairs = [tuple(sorted(pair)) for pair in stored.values()]
    assert len(pairs) == len(set(pairs))
    assert len(stored) >= len(acknowledged) > 40

    # Every event the directory committed reaches the notifier, whatever the failover did to
    # the messages that carried it (duplicates are dropped by event id).
    def events(service: str, sql: str) -> set[str]:
        with system.engines[service].connect() as conn:
            return set(conn.execute(text(sql)).scalars())

    outbox = "SELECT event_id FROM outbox_events WHERE event_type = 'directory.partnership_changed'"
    handled = "SELECT event_id FROM handled_events"
    try:
        wait_for(lambda: events("directory", outbox) <= events("notifier", handled), timeout=90,
                 interval=0.5, what="every partnership event to reach the notifier")  # fmt: skip
    except AssertionError as error:
        missing = events("directory", outbox) - events("notifier", handled)
        raise AssertionError(f"{error}: {missing}\n{explain(system, load, killed_at)}") from None
    assert len(events("directory", outbox)) == len(stored)
    # Including what a worker may have taken off the old master in its last moment.
    assert "events_resent_after_failover" in system.stack.log("relay")
    unsent = "SELECT event_id FROM outbox_events WHERE sent_at IS NULL"
    wait_for(lambda: not events("directory", unsent), timeout=30, what="the outbox to be empty")


def test_the_relay_marks_a_batch_sent_only_once_a_replica_holds_it(cluster, system, tmp_path):
    """The guard behind "every event relayed": a batch the replica has not taken stays unsent
    (the relay sends it again later), so a failover cannot drop an event marked sent."""
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata = MetaData()
    outbox, _handled = event_tables(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(outbox).values(
            event_id="cities-changed-1", event_type="directory.cities_changed", payload={},
            occurred_at=utcnow(),
        ))  # fmt: skip
    settings = CommonSettings(**CommonSettings.read(EnvReader(system.stack.env)))
    client = connect(settings.redis_url, settings.redis_sentinel_master, socket_timeout=10)
    relay = OutboxRelay(make_celery("relay-under-test", settings), {"directory": engine}, client,
                        replicas=1)  # fmt: skip

    def unsent() -> int:
        query = text("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL")
        with engine.connect() as conn:
            return conn.execute(query).scalar_one()

    master = cluster.master_port()
    (replica,) = [port for port in cluster.data_ports if port != master]
    wait_for(lambda: client.info("replication")["connected_slaves"] == 1, timeout=30,
             what="the master to have its replica")  # fmt: skip
    cluster.pause(replica)
    try:
        with pytest.raises(NotReplicated, match="0 of 1 replicas took the batch"):
            relay.relay_once()
        assert unsent() == 1
    finally:
        cluster.resume(replica)
    assert relay.relay_once() == 1
    assert unsent() == 0
    engine.dispose()
    client.close()
