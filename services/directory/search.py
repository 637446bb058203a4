"""City Search: an in-memory index of every name of every city, loaded from the directory's
database, so a query costs microseconds and answers the same on SQLite and PostgreSQL.

A query is read by ``query`` into a name and the places written after it ("Portland, OR");
cities in those places come first, the others stay as guesses ("Athens, Georgia" when
Georgia the country has no Athens).

Matching, best first: the exact name, an exact alternate or historical name ("Bombay"), a
prefix for autocomplete ("minnea"), then spelling mistakes (one or two edits of any name, own,
alternate or historical, found through ``typos``' symmetric-deletion index). Within each kind,
cities with more partnerships come first, then cities with more people (``_popularity_score``,
log scales).

When a big city's other name meets a smaller place's own name, the rule is:
- the same name exactly ("Roma"): the city found by its other name must be 10,000 times as
  popular (``ALTERNATE_PENALTY`` = 4 on the log scale), so a world city wins over a village,
  not over a real town that bears the name as its own;
- a typo of both ("Bombey": "Bombay" is Mumbai's other name, "Bambey" a Senegalese town's own)
  at the same distance: 100 times (``TYPO_ALTERNATE_PENALTY`` = 2). A typo is weaker evidence
  of which name was meant than an exact name is, so a smaller lead suffices; people misspell
  the names they have heard, and the names they have heard belong to big places;
- an exact name always beats a typo, and fewer edits beat more: "Bambey" is Bambey.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.directory.geography import countries, country_name, resolve_country
from services.directory.index_version import current_version
from services.directory.models import City, CityName, Partnership
from services.directory.names import normalize
from services.directory.query import Place, Reading, read_query
from services.directory.regions import RegionKey, region_aliases
from services.directory.typos import DeletionIndex
from shared.errors import InvalidInput
from shared.logs import get_logger

log = get_logger(__name__)

MAX_QUERY_CHARS = 200
MAX_LIMIT = 100
EXACT, ALTERNATE, PREFIX, PREFIX_ALTERNATE, FUZZY, FUZZY_ALTERNATE = range(6)
MATCH_NAMES = {
    EXACT: "exact",
    ALTERNATE: "alternate",
    PREFIX: "prefix",
    PREFIX_ALTERNATE: "prefix",
    FUZZY: "fuzzy",
    FUZZY_ALTERNATE: "fuzzy",
}
GROUPS = {EXACT: 0, ALTERNATE: 0, PREFIX: 1, PREFIX_ALTERNATE: 1, FUZZY: 2, FUZZY_ALTERNATE: 2}
# A prefix that begins more names than this is too wide to scan per keystroke: its best
# cities are ranked when the index is built.
WIDE_PREFIX_NAMES = 256
WIDE_PREFIX_MAX_CHARS = 8
WIDE_PREFIX_KEEP = 100
PREFIX_SCAN_LIMIT = 20000
FUZZY_MIN_CHARS = 4
# How much more popular (log scale, see _popularity_score) a city found by another of its
# names must be to come before a city whose own name matches.
ALTERNATE_PENALTY = 4.0
# The same for a typo: one of another name must belong to a city 100 times as popular as
# the place whose own name is as close ("Bombey": Mumbai, not Bambey).
TYPO_ALTERNATE_PENALTY = 2.0


@dataclass(frozen=True, slots=True)
class CityRecord:
    id: int
    name: str
    country_code: str
    region: str | None
    latitude: float
    longitude: float
    population: int

    def as_result(self, sister_count: int) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "country_code": self.country_code,
            "country": country_name(self.country_code),
            "region": self.region,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "population": self.population,
            "sister_count": sister_count,
        }


@dataclass
class SearchIndex:
    version: int
    cities: dict[int, CityRecord]
    sisters: dict[int, set[int]]
    own_name: dict[int, str] = field(default_factory=dict)
    ids_by_name: dict[str, tuple[int, ...]] = field(default_factory=dict)
    sorted_names: list[str] = field(default_factory=list)
    short_prefixes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    typos: DeletionIndex = field(default_factory=DeletionIndex)
    region_names: frozenset[str] = frozenset()
    region_aliases: dict[str, frozenset[RegionKey]] = field(default_factory=dict)
    # country code or (country code, region) -> the cities there
    cities_in: dict[str | RegionKey, tuple[int, ...]] = field(default_factory=dict)

    def sister_count(self, city_id: int) -> int:
        return len(self.sisters.get(city_id, ()))


def build_index(
    version: int,
    cities: list[CityRecord],
    names: list[tuple[int, str]],
    pairs: list[tuple[int, int]],
) -> SearchIndex:
    sisters: dict[int, set[int]] = defaultdict(set)
    for a, b in pairs:
        sisters[a].add(b)
        sisters[b].add(a)
    index = SearchIndex(version, {city.id: city for city in cities}, dict(sisters))
    by_name: dict[str, list[int]] = defaultdict(list)
    for city in cities:
        folded = normalize(city.name)
        index.own_name[city.id] = folded
        by_name[folded].append(city.id)
    for city_id, folded in names:
        if city_id in index.cities and city_id not in by_name[folded]:
            by_name[folded].append(city_id)
    index.ids_by_name = {name: tuple(ids) for name, ids in by_name.items()}
    index.sorted_names = sorted(by_name)

    index.short_prefixes = _ranked_wide_prefixes(index)
    index.region_names = frozenset(normalize(city.region) for city in cities if city.region)

    cities_in: dict[str | RegionKey, list[int]] = defaultdict(list)
    for city in cities:
        cities_in[city.country_code].append(city.id)
        if city.region:
            cities_in[(city.country_code, city.region)].append(city.id)
    index.cities_in = {key: tuple(ids) for key, ids in cities_in.items()}
    index.region_aliases = region_aliases(
        {(city.country_code, city.region) for city in cities if city.region}
    )

    index.typos = DeletionIndex(name for name in by_name if len(name) >= FUZZY_MIN_CHARS)
    return index


def _ranked_wide_prefixes(index: SearchIndex) -> dict[str, tuple[int, ...]]:
    """For prefixes that begin too many names to scan per keystroke, the best cities in
    advance (own names starting with the prefix first, then by popularity)."""
    counts: Counter[str] = Counter()
    for name in index.sorted_names:
        for length in range(1, min(WIDE_PREFIX_MAX_CHARS, len(name)) + 1):
            counts[name[:length]] += 1
    ranked: dict[str, tuple[int, ...]] = {}
    for prefix, count in counts.items():
        if count <= WIDE_PREFIX_NAMES:
            continue
        start = bisect.bisect_left(index.sorted_names, prefix)
        ids: set[int] = set()
        for name in index.sorted_names[start : start + count]:
            ids.update(index.ids_by_name[name])
        ranked[prefix] = tuple(
            sorted(
                ids,
                key=lambda city_id: (
                    not index.own_name[city_id].startswith(prefix),
                    -index.sister_count(city_id),
                    -index.cities[city_id].population,
                ),
            )[:WIDE_PREFIX_KEEP]
        )
    return ranked


def load_index(session: Session) -> SearchIndex:
    started = time.perf_counter()
    version = current_version(session)
    cities = [
        CityRecord(*row)
        for row in session.execute(
            select(
                City.id,
                City.name,
                City.country_code,
                City.region,
                City.latitude,
                City.longitude,
                City.population,
            )
        )
    ]
    names = [tuple(row) for row in session.execute(select(CityName.city_id, CityName.folded))]
    pairs = [
        tuple(row) for row in session.execute(select(Partnership.city_a_id, Partnership.city_b_id))
    ]
    index = build_index(version, cities, names, pairs)
    log.info(
        "search_index_loaded",
        version=version,
        cities=len(cities),
        names=len(index.ids_by_name),
        seconds=round(time.perf_counter() - started, 2),
    )
    return index


def resolve_country_filter(country: str | None) -> str | None:
    if country is None or not country.strip():
        return None
    text = country.strip()
    if len(text) > 100:
        raise InvalidInput("country is too long")
    if len(text) == 2 and text.upper() in countries():
        return text.upper()
    codes = resolve_country(text)
    if not codes:
        # Not echoed back: an error message is no place for what a stranger typed.
        raise InvalidInput("unknown country: give an ISO code such as 'US' or a country name")
    return codes[0]


def search(index: SearchIndex, query: str, country: str | None = None, limit: int = 10) -> dict:
    """Ranked cities for a query. Raises ``InvalidInput`` for a query no one could mean."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("q must not be empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q is too long ({MAX_QUERY_CHARS} characters at most)")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}")
    country_code = resolve_country_filter(country)
    readings = read_query(query, index.region_aliases, index.ids_by_name.__contains__)
    if not readings[0].name:
        raise InvalidInput("q has no letters or digits to search for")

    # city id -> (places it fits, kind of match, edit distance), the best reading's
    found: dict[int, tuple[int, int, int]] = {}
    for reading in readings:
        _read(index, reading, country_code, limit, found)
    if not found:
        # "Springfield Georgia" and no Springfield there: a guess beats an empty answer.
        for reading in readings[1:]:
            _read(index, Reading(reading.name, reading.places), country_code, limit, found)

    ordered = sorted(found, key=lambda city_id: _rank(index, city_id, found[city_id]))[:limit]
    results = []
    for city_id in ordered:
        result = index.cities[city_id].as_result(index.sister_count(city_id))
        result["match"] = MATCH_NAMES[found[city_id][1]]
        results.append(result)
    return {"results": results}


def _read(
    index: SearchIndex,
    reading: Reading,
    country_code: str | None,
    limit: int,
    found: dict[int, tuple[int, int, int]],
) -> None:
    """Adds the cities one reading of the query finds. A city that fits more of the places
    written after the name comes first; one that fits none is still a guess, unless the
    reading is strict."""
    folded, places = reading.name, reading.places
    fitting: set[int] = set()  # found in every place written (with none written: all found)

    def consider(city_id: int, kind: int, distance: int = 0) -> None:
        city = index.cities[city_id]
        if country_code and city.country_code != country_code:
            return
        fits = sum(place.holds(city.country_code, city.region) for place in places)
        if fits == len(places):
            fitting.add(city_id)
        elif reading.strict:
            return
        match = (-fits, kind, distance)
        best = found.get(city_id)
        if best is None or match < best:
            found[city_id] = match

    def consider_fitting(city_id: int, kind: int, distance: int = 0) -> None:
        city = index.cities[city_id]
        if all(place.holds(city.country_code, city.region) for place in places):
            consider(city_id, kind, distance)

    for city_id in index.ids_by_name.get(folded, ()):
        consider(city_id, EXACT if index.own_name[city_id] == folded else ALTERNATE)
    if not reading.strict:
        if country_code is None and not places:
            _prefix_matches(index, folded, consider, lambda: len(found), limit, True)
        else:
            # The cities in the places written first: a wide prefix's ranked few may hold
            # none of them ("sa, NY"), and its names are too many to scan, the cities of the
            # smallest place written are not.
            if folded in index.short_prefixes:
                pools = [_cities_of(index, place) for place in places]
                if country_code:
                    pools.append(index.cities_in.get(country_code, ()))
                for city_id in min(pools, key=len):
                    if index.own_name[city_id].startswith(folded):
                        consider_fitting(city_id, PREFIX)
            else:
                _prefix_matches(index, folded, consider_fitting, lambda: 0, limit, False)
            if country_code is None:
                _prefix_matches(index, folded, consider, lambda: len(found), limit, True)
    if len(fitting) < limit and len(folded) >= FUZZY_MIN_CHARS:
        _fuzzy_matches(index, folded, consider)


def _cities_of(index: SearchIndex, place: Place) -> list[int]:
    return [
        city_id
        for key in (*place.countries, *place.regions)
        for city_id in index.cities_in.get(key, ())
    ]


def _popularity_score(index: SearchIndex, city_id: int) -> float:
    """More partnerships, then more people: both on a log scale so neither swamps the other."""
    city = index.cities[city_id]
    return math.log10(city.population + 1) + 1.5 * math.log2(index.sister_count(city_id) + 1)


def _rank(index: SearchIndex, city_id: int, match: tuple[int, int, int]) -> tuple:
    """Places fitted, then own name before alternate name before prefix before typo; but a
    world city found by its other name ("Calcutta", "Roma", a typo of "Bombay") outranks a
    smaller place that bears that name, or a name as close, as its own."""
    unfitted, kind, distance = match
    score = _popularity_score(index, city_id)
    if kind in (ALTERNATE, PREFIX_ALTERNATE):
        score -= ALTERNATE_PENALTY
    elif kind == FUZZY_ALTERNATE:
        score -= TYPO_ALTERNATE_PENALTY
    group = GROUPS[kind]
    return (unfitted, group, distance, -score, index.cities[city_id].name, city_id)


def _prefix_matches(
    index: SearchIndex,
    folded: str,
    consider: Callable,
    found_count: Callable[[], int],
    enough: int,
    ranked_only: bool,
) -> None:
    """Names that begin with the query. ``ranked_only``: no filter applies, so a wide
    prefix's ranked cities are all there is to see."""
    wide = index.short_prefixes.get(folded)
    if wide is not None:
        before = found_count()
        for city_id in wide:
            own = index.own_name[city_id]
            consider(city_id, PREFIX if own.startswith(folded) else PREFIX_ALTERNATE)
        if ranked_only or found_count() - before >= enough:
            return
    start = bisect.bisect_left(index.sorted_names, folded)
    for position in range(start, min(start + PREFIX_SCAN_LIMIT, len(index.sorted_names))):
        name = index.sorted_names[position]
        if not name.startswith(folded):
            break
        for city_id in index.ids_by_name[name]:
            own = index.own_name[city_id]
            consider(city_id, PREFIX if own.startswith(folded) else PREFIX_ALTERNATE)


def _fuzzy_matches(index: SearchIndex, folded: str, consider: Callable) -> None:
    allowed = 1 if len(folded) < 6 else 2
    for name in index.typos.candidates(folded):
        distance = DamerauLevenshtein.distance(folded, name, score_cutoff=allowed)
        if distance <= allowed:
            for city_id in index.ids_by_name.get(name, ()):
                if index.own_name[city_id] == name:
                    consider(city_id, FUZZY, distance)
                else:
                    consider(city_id, FUZZY_ALTERNATE, distance)


class IndexHolder:
    """The worker's current index. A thread of the worker process asks the database for the
    directory's version every ``check_every`` seconds; when it moved, a fresh index is built
    and swapped in while the stale one keeps answering."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        check_every: float = 1.0,
        on_reload: Callable[[SearchIndex], None] | None = None,
    ):
        self.sessions = sessions
        self.check_every = check_every
        # Called after a fresh index replaced a stale one (answers cached elsewhere from the
        # stale one are stale too).
        self.on_reload = on_reload
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()
        self._watcher_pid: int | None = None

    def get(self) -> SearchIndex:
        if self._watcher_pid != os.getpid():
            self._start_watcher()
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    with self.sessions() as session:
                        self._index = load_index(session)
                return self._index
        return index

    def _start_watcher(self) -> None:
        with self._lock:
            if self._watcher_pid == os.getpid():
                return
            self._watcher_pid = os.getpid()
            threading.Thread(target=self._watch, name="search-index", daemon=True).start()

    def _watch(self) -> None:
        failing = False
        while True:
            time.sleep(self.check_every)
            try:
                index = self._index
                with self.sessions() as session:
                    version = current_version(session)
                if failing:
                    log.info("search_index_refresh_recovered")
                    failing = False
                if index is None or version == index.version:
                    continue
                with self.sessions() as session:
                    self._index = load_index(session)
                if self.on_reload is not None:
                    self.on_reload(self._index)
            except Exception:
                # The database may be down for a while: keep answering from the index we have,
                # and say so once, not every second.
                if not failing:
                    log.exception("search_index_refresh_failed")
                failing = True
