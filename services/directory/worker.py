"""The directory's Celery app; its worker consumes the ``directory`` queue."""

from __future__ import annotations

from services.directory.config import load_settings
from services.directory.models import Base
from shared.runtime import ServiceRuntime

runtime = ServiceRuntime(load_settings(), Base.metadata, include=["services.directory.tasks"])
app = runtime.celery
