"""The notifier's Celery app; its worker consumes the ``notifier`` queue."""

from __future__ import annotations

from services.notifier.config import load_settings
from services.notifier.event_handlers import HANDLERS
from services.notifier.models import Base
from shared.runtime import ServiceRuntime

runtime = ServiceRuntime(
    load_settings(), Base.metadata, include=["services.notifier.tasks"], event_handlers=HANDLERS
)
app = runtime.celery
