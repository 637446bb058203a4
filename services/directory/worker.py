"""The directory's Celery app; its worker consumes the ``directory`` queue. The search index
is loaded before the worker takes its first message, so no caller waits for it."""

from __future__ import annotations

from services.directory.config import load_settings
from services.directory.models import Base
from services.directory.search import IndexHolder
from shared.routing import GENERATION_KEY
from shared.runtime import ServiceRuntime

runtime = ServiceRuntime(load_settings(), Base.metadata, include=["services.directory.tasks"])
app = runtime.celery
search_index = IndexHolder(
    runtime.read_sessions,
    on_reload=lambda _index: runtime.redis.incr(GENERATION_KEY.format("directory")),
)
runtime.before_start(search_index.get)
