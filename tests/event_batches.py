"""Events as the relay sends them: envelopes of ``directory.partnership_changed``, in batches,
one ``notifier.handle_events`` message a batch, for tests that need a backlog of events."""

from __future__ import annotations

import uuid

from shared.celery_app import make_celery
from shared.settings import CommonSettings

BATCH = 500  # shared.relay.BATCH_SIZE


def partnership_events(count: int, first_id: int = 1) -> list[dict]:
    """``count`` partnerships created, ids from ``first_id``."""
    return [
        {
            "id": str(uuid.uuid4()),
            "type": "directory.partnership_changed",
            "producer": "directory",
            "occurred_at": "2026-12-01T00:00:00+00:00",
            "payload": {
                "change": "created",
                "partnership": {
                    "id": first_id + n,
                    "city_ids": [first_id + n, 900_000 + n],
                    "status": "active",
                },
            },
        }
        for n in range(count)
    ]


def in_batches(events: list[dict], size: int = BATCH) -> list[list[dict]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


def send_batches(settings: CommonSettings, batches: list[list[dict]]) -> None:
    """One ``notifier.handle_events`` message a batch, routed as the relay's are."""
    app = make_celery("test-relay", settings)
    with app.producer_or_acquire() as producer:
        for batch in batches:
            app.send_task("notifier.handle_events", args=[batch], producer=producer)
