"""Two records of one place made one: staff merge the duplicate into the survivor.

The duplicate's partnerships move to the survivor, but for one the survivor already has with
the same sister (kept once, the survivor's) and one between the two (a city is not its own
sister): those are removed. Its names become the survivor's alternates, so City Search finds
the survivor by them. The duplicate stays as a tombstone (``City.merged_into``): a request for
its id is answered with the survivor (``city_details``), City Search never returns it, and a
record merged into it before now points at the survivor too.

Every partnership moved or removed is announced as ``directory.partnership_changed``; the
merge itself as ``directory.cities_merged`` ``{"from", "into"}`` (the blog moves its stories'
links, the notifier its subscribers' followed cities) and ``directory.cities_changed`` with a
new version (the search index reloads); all in the transaction of the change, with one
``city.merged`` entry in the audit log in both cities' histories.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.directory.city_edits import find_city
from services.directory.city_views import city_reference
from services.directory.index_version import announce_cities_changed
from services.directory.models import Base, City, CityName, Partnership
from services.directory.partnerships import announce_partnership
from shared import audit
from shared.errors import Conflict, InvalidInput
from shared.events import publish


def merge_cities(session: Session, city_id: int, into_id: int) -> dict[str, Any]:
    """Merge city ``city_id`` (the duplicate) into ``into_id`` (the survivor)."""
    if city_id == into_id:
        raise InvalidInput("a city cannot be merged into itself")
    duplicate, survivor = find_city(session, city_id), find_city(session, into_id)
    for city in (duplicate, survivor):
        if city.merged_into is not None:
            raise Conflict(f"city {city.id} was merged into city {city.merged_into} already")
    moved, removed = _move_partnerships(session, duplicate.id, survivor.id)
    _move_names(session, duplicate.id, survivor.id)
    duplicate.merged_into = survivor.id
    # Ids that led to the duplicate lead to the survivor, in one step.
    session.execute(
        update(City).where(City.merged_into == duplicate.id).values(merged_into=survivor.id)
    )
    session.flush()
    publish(
        session,
        Base.metadata,
        "directory.cities_merged",
        {"from": duplicate.id, "into": survivor.id},
    )
    announce_cities_changed(session, {"merged": 1})
    summary = {
        "from": city_reference(duplicate),
        "into": city_reference(survivor),
        "partnerships_moved": moved,
        "partnerships_removed": removed,
    }
    audit.record(
        session,
        Base.metadata,
        "city.merged",
        "city",
        duplicate.id,
        summary,
        # Each partnership moved or removed has the merge in its history too.
        related=[("city", survivor.id)] + [("partnership", one) for one in moved + removed],
    )
    return {
        "merged": duplicate.id,
        "into": survivor.id,
        "partnerships_moved": moved,
        "partnerships_removed": removed,
    }


def _move_partnerships(session: Session, from_id: int, into_id: int) -> tuple[list, list]:
    """The duplicate's partnerships, each moved to the survivor or removed; their ids."""
    theirs = session.scalars(
        select(Partnership)
        .where(or_(Partnership.city_a_id == from_id, Partnership.city_b_id == from_id))
        .order_by(Partnership.id)
    ).all()
    survivors_sisters = set()
    for a, b in session.execute(
        select(Partnership.city_a_id, Partnership.city_b_id).where(
            or_(Partnership.city_a_id == into_id, Partnership.city_b_id == into_id)
        )
    ):
        survivors_sisters.add(b if a == into_id else a)
    moved, removed = [], []
    for partnership in theirs:
        sister = (
            partnership.city_b_id if partnership.city_a_id == from_id else partnership.city_a_id
        )
        if sister == into_id or sister in survivors_sisters:
            announce_partnership(session, "deleted", partnership)
            session.delete(partnership)
            removed.append(partnership.id)
        else:
            partnership.city_a_id, partnership.city_b_id = sorted((into_id, sister))
            session.flush()
            announce_partnership(session, "updated", partnership)
            moved.append(partnership.id)
    session.flush()
    return moved, removed


def _move_names(session: Session, from_id: int, into_id: int) -> None:
    """The duplicate's names the survivor lacks become its alternates."""
    known = set(session.scalars(select(CityName.folded).where(CityName.city_id == into_id)))
    for name in session.scalars(
        select(CityName).where(CityName.city_id == from_id).order_by(CityName.id)
    ):
        if name.folded not in known:
            known.add(name.folded)
            session.add(
                CityName(city_id=into_id, name=name.name, folded=name.folded, kind="alternate")
            )
