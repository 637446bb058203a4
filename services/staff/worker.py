"""The staff service's Celery app; its worker consumes the ``staff`` queue."""

from __future__ import annotations

from services.staff import passwords
from services.staff.config import load_settings
from services.staff.models import Base
from shared.runtime import ServiceRuntime

runtime = ServiceRuntime(load_settings(), Base.metadata, include=["services.staff.tasks"])
app = runtime.celery
runtime.before_start(passwords.warm_up)
