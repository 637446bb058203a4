"""Adding, changing and removing partnerships; every change announces
``directory.partnership_changed`` through the outbox and is recorded in the audit log, in the
same transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.directory.city_views import city_reference
from services.directory.index_version import bump_version
from services.directory.models import PARTNERSHIP_STATUSES, Base, City, Partnership
from shared import audit
from shared.errors import InvalidInput, NotFound, ServiceError
from shared.events import publish

# Paderborn and Le Mans date their bond to 836; nothing older is on record.
EARLIEST_YEAR = 800


def partnership_to_dict(partnership: Partnership) -> dict[str, Any]:
    return {
        "id": partnership.id,
        "city_ids": [partnership.city_a_id, partnership.city_b_id],
        "since": partnership.since,
        "status": partnership.status,
        "source": partnership.source,
        "notes": partnership.notes,
    }


def create_partnership(
    session: Session,
    city_id: int,
    sister_city_id: int,
    since: int | None = None,
    status: str = "active",
    source: str | None = None,
    notes: str | None = None,
) -> Partnership:
    city_a_id, city_b_id = sorted((_city_id(session, city_id), _city_id(session, sister_city_id)))
    if city_a_id == city_b_id:
        raise InvalidInput("a city cannot be its own sister")
    existing = session.scalar(
        select(Partnership.id).where(
            Partnership.city_a_id == city_a_id, Partnership.city_b_id == city_b_id
        )
    )
    if existing is not None:
        raise ServiceError(
            "conflict", f"these cities are already partners (partnership {existing})"
        )
    partnership = Partnership(
        city_a_id=city_a_id,
        city_b_id=city_b_id,
        since=_valid_year(since),
        status=_valid_status(status),
        source=source,
        notes=notes,
    )
    session.add(partnership)
    session.flush()
    announce_partnership(session, "created", partnership)
    audit.record(
        session,
        Base.metadata,
        "partnership.created",
        "partnership",
        partnership.id,
        _described(session, partnership),
        related=_cities_of(partnership),
    )
    return partnership


def update_partnership(session: Session, partnership_id: int, **changes: Any) -> Partnership:
    partnership = _get(session, partnership_id)
    unknown = set(changes) - {"since", "status", "source", "notes"}
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    before = partnership_to_dict(partnership)
    if "since" in changes:
        partnership.since = _valid_year(changes["since"])
    if "status" in changes:
        partnership.status = _valid_status(changes["status"])
    for field in ("source", "notes"):
        if field in changes:
            setattr(partnership, field, changes[field])
    session.flush()
    announce_partnership(session, "updated", partnership)
    audit.record(
        session,
        Base.metadata,
        "partnership.updated",
        "partnership",
        partnership.id,
        {
            "city_ids": before["city_ids"],
            "changes": audit.changes(before, partnership_to_dict(partnership)),
        },
        related=_cities_of(partnership),
    )
    return partnership


def delete_partnership(session: Session, partnership_id: int) -> None:
    partnership = _get(session, partnership_id)
    announce_partnership(session, "deleted", partnership)
    audit.record(
        session,
        Base.metadata,
        "partnership.removed",
        "partnership",
        partnership.id,
        _described(session, partnership),
        related=_cities_of(partnership),
    )
    session.delete(partnership)
    session.flush()


def announce_partnership(session: Session, change: str, partnership: Partnership) -> None:
    """``directory.partnership_changed`` for the change, with a new directory version."""
    bump_version(session)
    # The two cities' names travel with the change: a consumer can tell its readers about it
    # without asking back.
    cities = [
        session.get(City, city_id) for city_id in (partnership.city_a_id, partnership.city_b_id)
    ]
    publish(
        session,
        Base.metadata,
        "directory.partnership_changed",
        {
            "change": change,
            "partnership": partnership_to_dict(partnership),
            "cities": [city_reference(city) for city in cities if city is not None],
        },
    )


def _cities_of(partnership: Partnership) -> list[tuple[str, int]]:
    """A partnership's changes are part of both its cities' histories."""
    return [("city", partnership.city_a_id), ("city", partnership.city_b_id)]


def _described(session: Session, partnership: Partnership) -> dict[str, Any]:
    """A partnership as the audit log keeps it: its fields and its cities' names, readable
    after the partnership or a city is gone."""
    cities = [
        session.get(City, city_id) for city_id in (partnership.city_a_id, partnership.city_b_id)
    ]
    return {
        **partnership_to_dict(partnership),
        "cities": [city_reference(city) for city in cities if city is not None],
    }


def city_names(session: Session, city_ids: list[int]) -> dict:
    """Names of directory cities (for services that show them): unknown ids are left out."""
    if not isinstance(city_ids, list) or len(city_ids) > 500:
        raise InvalidInput("city_ids must be a list of at most 500 ids")
    wanted = {city_id for city_id in city_ids if isinstance(city_id, int)}
    cities = session.scalars(select(City).where(City.id.in_(wanted))).all()
    return {"cities": [city_reference(city) for city in sorted(cities, key=lambda c: c.id)]}


def _get(session: Session, partnership_id: int) -> Partnership:
    partnership = session.get(Partnership, partnership_id)
    if partnership is None:
        raise NotFound(f"no partnership with id {partnership_id}")
    return partnership


def _city_id(session: Session, city_id: int) -> int:
    city = session.get(City, city_id)
    if city is None:
        raise NotFound(f"no city with id {city_id}")
    if city.merged_into is not None:
        raise ServiceError(
            "conflict", f"city {city_id} was merged into city {city.merged_into}: use that one"
        )
    return city_id


def _valid_year(since: int | None) -> int | None:
    if since is None:
        return None
    this_year = datetime.now(UTC).year
    if not EARLIEST_YEAR <= since <= this_year:
        raise InvalidInput(f"since must be a year from {EARLIEST_YEAR} to {this_year}")
    return since


def _valid_status(status: str) -> str:
    if status not in PARTNERSHIP_STATUSES:
        raise InvalidInput("status must be one of " + ", ".join(PARTNERSHIP_STATUSES))
    return status


MAX_PAGE = 100


def list_partnerships(
    session: Session, city_id: int | None = None, before_id: int | None = None, limit: int = 50
) -> dict[str, Any]:
    """Staff's list: newest first, a page at a time (``before_id``: the last id of the page
    before), each with both cities' names, regions and countries; ``city_id`` narrows it to
    one city's."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}")
    query = select(Partnership)
    if city_id is not None:
        query = query.where((Partnership.city_a_id == city_id) | (Partnership.city_b_id == city_id))
    if before_id is not None:
        query = query.where(Partnership.id < before_id)
    rows = list(session.scalars(query.order_by(Partnership.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    wanted = {one for row in page for one in (row.city_a_id, row.city_b_id)}
    cities = {
        city.id: {**city_reference(city), "region": city.region}
        for city in session.scalars(select(City).where(City.id.in_(wanted)))
    }
    return {
        "results": [
            {
                **partnership_to_dict(row),
                "cities": [cities.get(row.city_a_id), cities.get(row.city_b_id)],
            }
            for row in page
        ],
        "next_before_id": page[-1].id if len(rows) > limit else None,
    }


def get_partnership(session: Session, partnership_id: int) -> dict[str, Any]:
    """One partnership with its cities, for staff to edit."""
    partnership = _get(session, partnership_id)
    cities = [
        session.get(City, city_id) for city_id in (partnership.city_a_id, partnership.city_b_id)
    ]
    return {
        **partnership_to_dict(partnership),
        "cities": [{**city_reference(city), "region": city.region} for city in cities if city],
    }
