"""The directory's tasks: thin wrappers that open a session and call one plain function."""

from __future__ import annotations

from services.directory import partnerships
from services.directory.worker import app, runtime
from shared.db import session_scope


@app.task(name="directory.create_partnership", shared=False)
def create_partnership(
    city_id: int,
    sister_city_id: int,
    since: int | None = None,
    status: str = "active",
    source: str | None = None,
    notes: str | None = None,
) -> dict:
    with session_scope(runtime.sessions) as session:
        partnership = partnerships.create_partnership(
            session, city_id, sister_city_id, since, status, source, notes
        )
        return partnerships.partnership_to_dict(partnership)


@app.task(name="directory.update_partnership", shared=False)
def update_partnership(partnership_id: int, changes: dict) -> dict:
    with session_scope(runtime.sessions) as session:
        partnership = partnerships.update_partnership(session, partnership_id, **changes)
        return partnerships.partnership_to_dict(partnership)


@app.task(name="directory.delete_partnership", shared=False)
def delete_partnership(partnership_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        partnerships.delete_partnership(session, partnership_id)
    return {"deleted": partnership_id}
