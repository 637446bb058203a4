"""Staff's corrections of a city: its names (its own and the alternates it is searched by), its
region, population and coordinates. Each edit is recorded in the audit log with what it
changed, and announced as ``directory.cities_changed`` with a new directory version in the
same transaction: the workers' search indexes reload, the blog links its stories again, and
the gateway's cached pages of the directory go stale when the event is delivered."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.directory.city_views import city_reference
from services.directory.geography import country_name
from services.directory.index_version import announce_cities_changed
from services.directory.models import Base, City, CityName, Partnership
from services.directory.names import normalize
from shared import audit
from shared.errors import Conflict, InvalidInput, NotFound

EDITABLE = ("name", "alternate_names", "region", "population", "latitude", "longitude")
NAME_CHARS = 200
MAX_ALTERNATES = 200
MAX_POPULATION = 2**31 - 1
MAX_CITY_ID = 2**31 - 1


def city_record(session: Session, city_id: int) -> dict[str, Any]:
    """A city as staff edit it: every field they can change, its partnerships counted, and
    the survivor it was merged into, if it was."""
    city = find_city(session, city_id)
    partnerships = session.scalar(
        select(func.count())
        .select_from(Partnership)
        .where((Partnership.city_a_id == city.id) | (Partnership.city_b_id == city.id))
    )
    return {
        "id": city.id,
        **_editable(session, city),
        "country_code": city.country_code,
        "country": country_name(city.country_code),
        "source": city.source,
        "partnership_count": partnerships or 0,
        "merged_into": city.merged_into,
    }


def update_city(session: Session, city_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Change the fields ``changes`` names (``EDITABLE``); the others stay as they are."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidInput("say what to change: " + ", ".join(EDITABLE))
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    city = find_city(session, city_id)
    if city.merged_into is not None:
        raise Conflict(f"city {city.id} was merged into city {city.merged_into}: edit that one")
    before = _editable(session, city)
    after = {**before, **_valid(changes)}
    if after["name"] != before["name"] or after["alternate_names"] != before["alternate_names"]:
        _rename(session, city, after["name"], after["alternate_names"])
        after["alternate_names"] = _editable(session, city)["alternate_names"]
    city.region = after["region"]
    city.population = after["population"]
    city.latitude, city.longitude = after["latitude"], after["longitude"]
    session.flush()
    changed = audit.changes(before, after)
    if changed:
        renamed = [city_reference(city)] if "name" in changed else None
        announce_cities_changed(session, {"updated": 1}, renamed)
        audit.record(
            session,
            Base.metadata,
            "city.updated",
            "city",
            city.id,
            {"name": city.name, "country_code": city.country_code, "changes": changed},
        )
    return city_record(session, city.id)


def find_city(session: Session, city_id: int) -> City:
    city = session.get(City, city_id) if 1 <= city_id <= MAX_CITY_ID else None
    if city is None:
        raise NotFound(f"no city with id {city_id}")
    return city


def _editable(session: Session, city: City) -> dict[str, Any]:
    alternates = session.scalars(
        select(CityName.name)
        .where(CityName.city_id == city.id, CityName.kind == "alternate")
        .order_by(CityName.id)
    ).all()
    return {
        "name": city.name,
        "alternate_names": list(alternates),
        "region": city.region,
        "population": city.population,
        "latitude": city.latitude,
        "longitude": city.longitude,
    }


def _valid(changes: dict[str, Any]) -> dict[str, Any]:
    valid: dict[str, Any] = {}
    if "name" in changes:
        valid["name"] = _name(changes["name"], "name")
    if "alternate_names" in changes:
        names = changes["alternate_names"]
        if not isinstance(names, list) or len(names) > MAX_ALTERNATES:
            raise InvalidInput(f"alternate_names must be a list of at most {MAX_ALTERNATES} names")
        valid["alternate_names"] = [_name(name, "an alternate name") for name in names]
    if "region" in changes:
        region = changes["region"]
        if region is not None and not isinstance(region, str):
            raise InvalidInput("region must be text or null")
        region = (region or "").strip()
        if len(region) > NAME_CHARS or not region.isprintable():
            raise InvalidInput(f"region must be at most {NAME_CHARS} printable characters")
        valid["region"] = region or None
    if "population" in changes:
        population = changes["population"]
        if not _whole(population) or not 0 <= population <= MAX_POPULATION:
            raise InvalidInput("population must be a whole number, 0 or more")
        valid["population"] = population
    for field, limit in (("latitude", 90), ("longitude", 180)):
        if field in changes:
            value = changes[field]
            if not _number(value) or not -limit <= value <= limit:
                raise InvalidInput(f"{field} must be a number from -{limit} to {limit}")
            valid[field] = float(value)
    return valid


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    name = " ".join(value.split())
    if not 0 < len(name) <= NAME_CHARS or not name.isprintable() or not normalize(name):
        raise InvalidInput(f"{what} must be 1 to {NAME_CHARS} printable characters, with letters")
    # Its folded form is kept too: a ligature such as "ﷺ" folds to many letters.
    if len(normalize(name)) > NAME_CHARS:
        raise InvalidInput(f"{what} is too long once its letters are spelled out")
    return name


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rename(session: Session, city: City, name: str, alternates: list[str]) -> None:
    """The city's searchable names: its own first, then each alternate whose folded form is
    new (two spellings that fold alike are one name to City Search)."""
    city.name, city.ascii_name = name, normalize(name)
    rows: dict[str, tuple[str, str]] = {normalize(name): (name, "name")}
    for alternate in alternates:
        rows.setdefault(normalize(alternate), (alternate, "alternate"))
    city.names.clear()
    session.flush()  # the old rows go before new ones of the same folded form come
    city.names.extend(
        CityName(name=original, folded=folded, kind=kind)
        for folded, (original, kind) in rows.items()
    )
