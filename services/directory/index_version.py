"""The directory's change counter: every change to cities or partnerships bumps it in the same
transaction, and each worker's in-memory search index reloads when it moves."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.directory.models import DirectoryVersion


def bump_version(session: Session) -> None:
    session.execute(update(DirectoryVersion).values(version=DirectoryVersion.version + 1))


def current_version(session: Session) -> int:
    return session.scalar(select(DirectoryVersion.version)) or 0
