"""The directory's Celery app; its worker consumes the ``directory`` queue. The search index,
and what suggestions are made from, are prepared before the worker takes its first message
and again whenever the directory changed, so no caller waits for them."""

from __future__ import annotations

from services.directory import suggestions
from services.directory.config import load_settings
from services.directory.models import Base
from services.directory.search import IndexHolder, SearchIndex
from shared.routing import BACKGROUND, mark_stale
from shared.runtime import ServiceRuntime

runtime = ServiceRuntime(load_settings(), Base.metadata, include=["services.directory.tasks"])
app = runtime.celery


def _reloaded(index: SearchIndex) -> None:
    # Only an interactive worker's index answers what the gateway caches (searches, suggested
    # sisters). A background worker's (it links stories to places) changes none of that: its
    # reload moving the generation made every cached city page stale again, seconds after a
    # change had been seen, whenever the blog had just asked about places.
    if runtime.lane == BACKGROUND:
        return
    suggestions.prepare_again(index)
    mark_stale(runtime.redis, "directory.index_reloaded")


search_index = IndexHolder(runtime.read_sessions, on_reload=_reloaded)
runtime.before_start(lambda: suggestions.prepare(search_index.get()))
