"""The blog's Celery app; its worker consumes the ``blog`` queue."""

from __future__ import annotations

from services.blog.config import load_settings
from services.blog.models import Base
from shared.runtime import ServiceRuntime

runtime = ServiceRuntime(load_settings(), Base.metadata, include=["services.blog.tasks"])
app = runtime.celery
