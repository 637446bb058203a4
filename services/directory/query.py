"""Reading a City Search query: the name people look for, and the places they write after it.

"Portland, Oregon", "Portland, OR", "London, Ontario, Canada": after a comma, each part is a
place, a country (its name or ISO code) or a first-level region (see ``regions``); a part that
is neither is ignored. Without commas ("St. Paul MN", "Portland Oregon"), the last words are a
place only when the whole query is no known name and the words before it name a city there:
"New York" stays a name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.directory.geography import countries, country_named, resolve_country
from services.directory.names import normalize
from services.directory.regions import RegionKey

# Words a trailing place may take without commas ("New South Wales", "Rio Grande do Sul").
PLACE_MAX_WORDS = 4
# Fewer letters before a trailing place and the split is more likely a name cut in two.
NAME_MIN_CHARS = 3


@dataclass(frozen=True, slots=True)
class Place:
    """What a place written after the name may mean: countries, regions, or both
    ("Georgia" is a country and a state)."""

    countries: frozenset[str]
    regions: frozenset[RegionKey]

    def holds(self, country_code: str, region: str | None) -> bool:
        return country_code in self.countries or (country_code, region) in self.regions


@dataclass(frozen=True, slots=True)
class Reading:
    """One way to read a query: the folded name and the places after it. ``strict``: the
    places were guessed from words without commas, so only cities in them count."""

    name: str
    places: tuple[Place, ...] = ()
    strict: bool = False


def read_place(
    text: str, aliases: Mapping[str, frozenset[RegionKey]], guess: bool = True
) -> Place | None:
    """The place a text names, or None. ``guess``: a misspelt country counts too."""
    folded = normalize(text)
    if not folded:
        return None
    codes = set(resolve_country(text)) if guess else set()
    named = country_named(text)
    if named:
        codes.add(named)
    stripped = text.strip()
    if len(stripped) == 2 and stripped.isupper() and stripped in countries():
        codes.add(stripped)
    regions = aliases.get(folded, frozenset())
    if not codes and not regions:
        return None
    return Place(frozenset(codes), regions)


def read_query(
    query: str,
    aliases: Mapping[str, frozenset[RegionKey]],
    is_name: Callable[[str], bool],
) -> list[Reading]:
    """The readings of a query, the literal one first."""
    parts = [part for part in query.split(",") if normalize(part)] if "," in query else []
    if len(parts) >= 2:
        places = tuple(
            place for part in parts[1:] if (place := read_place(part, aliases)) is not None
        )
        return [Reading(normalize(parts[0]), places)]
    folded = normalize(query)
    readings = [Reading(folded)]
    if not folded or is_name(folded):
        return readings
    _peel(folded.split(), (), aliases, readings)
    return readings


def _peel(
    words: list[str],
    places: tuple[Place, ...],
    aliases: Mapping[str, frozenset[RegionKey]],
    readings: list[Reading],
) -> None:
    """Readings with up to two places taken off the end ("london ontario canada")."""
    for count in range(1, min(PLACE_MAX_WORDS, len(words) - 1) + 1):
        place = read_place(" ".join(words[-count:]), aliases, guess=False)
        if place is None:
            continue
        head = words[:-count]
        found = (place, *places)
        if len(" ".join(head)) >= NAME_MIN_CHARS:
            readings.append(Reading(" ".join(head), found, strict=True))
        if not places:
            _peel(head, found, aliases, readings)
