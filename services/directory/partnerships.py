"""Adding, changing and removing partnerships; every change announces
``directory.partnership_changed`` through the outbox, in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.directory.index_version import bump_version
from services.directory.models import PARTNERSHIP_STATUSES, Base, City, Partnership
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
    _announce(session, "created", partnership)
    return partnership


def update_partnership(session: Session, partnership_id: int, **changes: Any) -> Partnership:
    partnership = _get(session, partnership_id)
    unknown = set(changes) - {"since", "status", "source", "notes"}
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    if "since" in changes:
        partnership.since = _valid_year(changes["since"])
    if "status" in changes:
        partnership.status = _valid_status(changes["status"])
    for field in ("source", "notes"):
        if field in changes:
            setattr(partnership, field, changes[field])
    session.flush()
    _announce(session, "updated", partnership)
    return partnership


def delete_partnership(session: Session, partnership_id: int) -> None:
    partnership = _get(session, partnership_id)
    _announce(session, "deleted", partnership)
    session.delete(partnership)
    session.flush()


def _announce(session: Session, change: str, partnership: Partnership) -> None:
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
            "cities": [city_summary(city) for city in cities if city is not None],
        },
    )


def city_summary(city: City) -> dict[str, Any]:
    return {"id": city.id, "name": city.name, "country_code": city.country_code}


def city_names(session: Session, city_ids: list[int]) -> dict:
    """Names of directory cities (for services that show them): unknown ids are left out."""
    if not isinstance(city_ids, list) or len(city_ids) > 500:
        raise InvalidInput("city_ids must be a list of at most 500 ids")
    wanted = {city_id for city_id in city_ids if isinstance(city_id, int)}
    cities = session.scalars(select(City).where(City.id.in_(wanted))).all()
    return {"cities": [city_summary(city) for city in sorted(cities, key=lambda c: c.id)]}


def _get(session: Session, partnership_id: int) -> Partnership:
    partnership = session.get(Partnership, partnership_id)
    if partnership is None:
        raise NotFound(f"no partnership with id {partnership_id}")
    return partnership


def _city_id(session: Session, city_id: int) -> int:
    if session.get(City, city_id) is None:
        raise NotFound(f"no city with id {city_id}")
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
