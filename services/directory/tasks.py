"""The directory's tasks: thin wrappers that open a session or take the search index and call
one plain function."""

from __future__ import annotations

from services.directory import city_edits, city_merges, partnerships
from services.directory.city_details import get_city as city_details
from services.directory.import_lock import ImportLock
from services.directory.index_version import current_version
from services.directory.partnership_csv import RowError
from services.directory.partnerships_import import import_partnerships as import_rows
from services.directory.places import match_places as places_in
from services.directory.places import match_places_many as places_in_many
from services.directory.search import search
from services.directory.suggestions import suggest_sisters as suggestions_for
from services.directory.worker import app, runtime, search_index
from shared.db import session_scope
from shared.errors import InvalidInput


@app.task(name="directory.search_cities", shared=False)
def search_cities(q: str, country: str | None = None, limit: int = 10) -> dict:
    return search(search_index.get(), q, country, limit, runtime.settings.home_country)


@app.task(name="directory.index_version", shared=False)
def index_version() -> dict:
    """The directory's version that this worker's searches answer from, beside the
    directory's own: how far behind a visitor's search is (the watcher catches up within
    seconds of a change)."""
    with runtime.read_sessions() as session:
        directory = current_version(session)
    return {"index": search_index.get().version, "directory": directory}


@app.task(name="directory.get_city", shared=False)
def get_city(city_id: int, sort: str = "distance") -> dict:
    with runtime.read_sessions() as session:
        return city_details(session, city_id, sort)


@app.task(name="directory.suggest_sisters", shared=False)
def suggest_sisters(city_id: int, limit: int = 10) -> dict:
    return suggestions_for(search_index.get(), city_id, limit)


@app.task(name="directory.match_places", shared=False)
def match_places(text: str, limit: int = 50, context_city_ids: list[int] | None = None) -> dict:
    return places_in(search_index.current(), text, limit, context_city_ids)


@app.task(name="directory.match_places_many", shared=False)
def match_places_many(
    texts: list[str], limit: int = 50, contexts: list[list[int]] | None = None
) -> dict:
    # A story's cities are kept: answer from the directory as it is now.
    return places_in_many(search_index.current(), texts, limit, contexts)


@app.task(name="directory.get_city_names", shared=False)
def get_city_names(city_ids: list[int]) -> dict:
    with runtime.read_sessions() as session:
        return partnerships.city_names(session, city_ids)


@app.task(name="directory.get_city_record", shared=False)
def get_city_record(city_id: int) -> dict:
    with runtime.read_sessions() as session:
        return city_edits.city_record(session, city_id)


@app.task(name="directory.update_city", shared=False)
def update_city(city_id: int, changes: dict) -> dict:
    with session_scope(runtime.sessions) as session:
        return city_edits.update_city(session, city_id, changes)


@app.task(name="directory.merge_cities", shared=False)
def merge_cities(city_id: int, into_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        return city_merges.merge_cities(session, city_id, into_id)


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


@app.task(name="directory.list_partnerships", shared=False)
def list_partnerships(
    city_id: int | None = None, before_id: int | None = None, limit: int = 50
) -> dict:
    with runtime.read_sessions() as session:
        return partnerships.list_partnerships(session, city_id, before_id, limit)


@app.task(name="directory.get_partnership", shared=False)
def get_partnership(partnership_id: int) -> dict:
    with runtime.read_sessions() as session:
        return partnerships.get_partnership(session, partnership_id)


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


# A partnership's source column holds this much (the file's name stands in for rows without one).
MAX_SOURCE_CHARS = 200


@app.task(name="directory.import_partnerships", shared=False)
def import_partnerships(text: str, source: str) -> dict:
    """Staff's CSV upload: the command line's import, with its report as a dict. Committed in
    batches as the command line does; one at a time; a second run of a file changes nothing."""
    if not 0 < len(source) <= MAX_SOURCE_CHARS or not source.isprintable():
        raise InvalidInput(f"the file's name must be 1 to {MAX_SOURCE_CHARS} printable characters")
    try:
        with ImportLock(runtime.redis) as lock, session_scope(runtime.sessions) as session:

            def commit() -> None:
                session.commit()
                lock.renew()

            report = import_rows(session, text, source, lock.renew, commit)
    except RowError as error:  # the file as a whole (its header) is not one we read
        raise InvalidInput(str(error)) from None
    return report.to_dict()
