"""The one beat process: it sends the periodic tasks that each service declares in its
``schedule.py``. Only the schedule tables are imported, never a service's code.

Any number of beats may run (one per host, so that losing a host loses no schedule): they
share a lock in Redis (``shared.leader_lock``), and only the holder sends. The others are
standbys that try for the lock every second; when the holder dies, one of them takes over
within ``LOCK_SECONDS``. A holder stopped with SIGTERM gives the lock up at once.

The schedule is kept in memory. Celery's file of last-run times is gone: it lived on one host,
so a standby elsewhere never had it, and two beats on one host would share it. Without it a
beat's entries first come due one interval after it starts, and at a takeover whatever came
due while it stood by is sent at once. Every periodic task here works out what is due from
its own database, so running one early, late or twice does no harm.

Why not celery-redbeat (which keeps the schedule in Redis with a lock of its own): another
dependency, and one that reads Sentinel from a URL dialect of its own, for the one thing it
would add here (last-run times that outlive a takeover) that the tasks do not need.
"""

from __future__ import annotations

import importlib

from celery.beat import Scheduler

from shared.celery_app import make_celery
from shared.leader_lock import LeaderLock
from shared.logs import get_logger
from shared.redis_connection import connect
from shared.routing import SERVICES
from shared.settings import CommonSettings

LOCK_KEY = "sistercities:beat:leader"
LOCK_SECONDS = 15.0
# The holder renews at least this often (well inside LOCK_SECONDS); a standby tries this often.
RENEW_SECONDS = LOCK_SECONDS / 3
STANDBY_SECONDS = 1.0

log = get_logger(__name__)


def collect_schedule() -> dict[str, dict]:
    schedule: dict[str, dict] = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.schedule")
        for name, entry in module.PERIODIC_TASKS.items():
            if not entry["task"].startswith(f"{service}."):
                raise ValueError(f"{service} declares a periodic task of another service: {name}")
            schedule[name] = entry
    return schedule


class SingleBeatScheduler(Scheduler):
    """Celery's in-memory scheduler, sending only while this process holds ``lock`` (set on a
    subclass by ``run_beat``: Celery builds the scheduler from its class)."""

    lock: LeaderLock

    def tick(self, *args, **kwargs) -> float:
        if not self.lock.hold():
            return STANDBY_SECONDS
        return min(super().tick(*args, **kwargs), RENEW_SECONDS)

    def close(self) -> None:
        super().close()
        self.lock.release()


def run_beat(settings: CommonSettings) -> None:
    app = make_celery("beat", settings)
    app.conf.beat_schedule = collect_schedule()
    client = connect(
        settings.redis_url,
        settings.redis_sentinel_master,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    lock = LeaderLock(client, LOCK_KEY, LOCK_SECONDS)
    app.conf.beat_scheduler = type(
        SingleBeatScheduler.__name__, (SingleBeatScheduler,), {"lock": lock}
    )
    app.conf.beat_max_loop_interval = RENEW_SECONDS
    log.info("beat_waiting_for_lock", key=LOCK_KEY, token=lock.token)
    app.start(["beat", f"--loglevel={settings.log_level.upper()}"])
