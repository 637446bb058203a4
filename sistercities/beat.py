"""The one beat process: it sends the periodic tasks that each service declares in its
``schedule.py``. Only the schedule tables are imported, never a service's code."""

from __future__ import annotations

import importlib

from shared.celery_app import make_celery
from shared.routing import SERVICES
from shared.settings import CommonSettings


def collect_schedule() -> dict[str, dict]:
    schedule: dict[str, dict] = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.schedule")
        for name, entry in module.PERIODIC_TASKS.items():
            if not entry["task"].startswith(f"{service}."):
                raise ValueError(f"{service} declares a periodic task of another service: {name}")
            schedule[name] = entry
    return schedule


def run_beat(settings: CommonSettings) -> None:
    app = make_celery("beat", settings)
    app.conf.beat_schedule = collect_schedule()
    app.start(
        [
            "beat",
            f"--schedule={settings.data_dir / 'celerybeat-schedule'}",
            f"--loglevel={settings.log_level.upper()}",
        ]
    )
