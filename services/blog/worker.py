"""The blog's Celery app; its worker consumes the ``blog`` queue and hears the directory's
``directory.cities_changed`` and ``directory.cities_merged``."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from services.blog import city_links
from services.blog.config import load_settings
from services.blog.models import Base
from shared.routing import mark_stale
from shared.runtime import ServiceRuntime


def _cities_changed(session: Session, payloads: list[dict]) -> None:
    city_links.cities_changed(session, payloads)
    # The stale posts are asked about once the new version is committed: a request sent
    # before the commit could still read the old one and find nothing to ask.
    event.listen(session, "after_commit", lambda _session: _ask_again(), once=True)


def _cities_merged(session: Session, payloads: list[dict]) -> None:
    city_links.cities_merged(session, payloads)
    # Stories move to the survivor's lists, announced or not: cached lists are stale once
    # the move is committed.
    event.listen(
        session,
        "after_commit",
        lambda _session: mark_stale(runtime.redis, "blog.posts_changed"),
        once=True,
    )


def _ask_again() -> None:
    app.send_task("blog.link_pending_posts")


runtime = ServiceRuntime(
    load_settings(),
    Base.metadata,
    include=["services.blog.tasks"],
    event_handlers={
        "directory.cities_changed": _cities_changed,
        "directory.cities_merged": _cities_merged,
    },
)
app = runtime.celery
