"""The directory's change counter: every change to cities or partnerships bumps it in the same
transaction, and each worker's in-memory search index reloads when it moves."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.directory.models import Base, DirectoryVersion
from shared.events import publish


def bump_version(session: Session) -> None:
    session.execute(update(DirectoryVersion).values(version=DirectoryVersion.version + 1))


def current_version(session: Session) -> int:
    return session.scalar(select(DirectoryVersion.version)) or 0


def announce_cities_changed(
    session: Session, counts: dict[str, int], renamed: list[dict] | None = None
) -> None:
    """Cities were added, changed or merged: a new version, and ``directory.cities_changed``
    with it (the blog links its stories again from that version on). ``renamed``: the
    references (``city_views.city_reference``) of cities staff renamed, for services that
    keep their names (the notifier's digests)."""
    bump_version(session)
    payload = {**counts, "version": current_version(session)}
    if renamed:
        payload["cities"] = renamed
    publish(session, Base.metadata, "directory.cities_changed", payload)
