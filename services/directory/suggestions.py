"""Cities that would make good new sisters, each with a score and the plain reasons for it.

Three signals: the partnership graph ("twinned with two of your sisters"; "cities like yours
in your country are twinned with it"), similar size, and a similar distance from the equator
(a similar climate band). Never the city's own country, never a city it is already twinned
with.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from services.directory.city_views import city_summary
from services.directory.geography import country_name
from services.directory.search import CityRecord, SearchIndex
from shared.errors import InvalidInput, NotFound

MAX_LIMIT = 50
LIKE_YOURS = 25
WEIGHTS = {"network": 0.5, "size": 0.3, "climate": 0.2}


def _size_similarity(a: int, b: int) -> float | None:
    if a <= 0 or b <= 0:
        return None  # a place whose population we do not know
    return max(0.0, 1.0 - abs(math.log10(a) - math.log10(b)))


def _climate_similarity(a: CityRecord, b: CityRecord) -> float:
    return _climate(a.latitude, b.latitude)


def _climate(a: float, b: float) -> float:
    return max(0.0, 1.0 - abs(abs(a) - abs(b)) / 15.0)


def _people(n: int) -> str:
    return f"{n:,} people"


@dataclass(frozen=True)
class _Twinned:
    """The cities active in twinning, arranged once per search index, when the directory
    changed and the index was loaded again: by size (log10 of the population) as arrays, so
    the cities of a similar size are a window scored at once instead of a scan of every city,
    and by country (sized too, for the cities like a city)."""

    log_sizes: np.ndarray  # ascending; math.log10 of each population, as the scores use
    ids_by_size: np.ndarray
    countries_by_size: np.ndarray  # a number per country code (``country_numbers``)
    latitudes_by_size: np.ndarray  # absolute
    population_by_size: np.ndarray
    country_numbers: dict[str, int]
    # every twinned city's id -> what its score needs: country code, latitude, population
    facts: dict[int, tuple[str, float, int]]
    # per country, the twinned cities with the most partners first (ties by id), enough of
    # them to name the cities like one whose population is not known
    busiest_by_country: dict[str, list[int]]
    # per country, the twinned cities with a known population: (log10 sizes, ids), by id
    sized_by_country: dict[str, tuple[np.ndarray, np.ndarray]]


_arranged: dict[int, tuple[SearchIndex, _Twinned]] = {}
_arranged_lock = threading.Lock()


def prepare(index: SearchIndex) -> None:
    """Arrange an index's twinned cities now, before any visitor asks for suggestions."""
    _twinned(index)


def prepare_again(index: SearchIndex) -> None:
    """A fresh index replaced the one this process arranged: arrange it too, before the
    directory's answers are announced stale. A process that never suggested (the background
    lane's) arranges nothing."""
    if _arranged:
        _twinned(index)


def _twinned(index: SearchIndex) -> _Twinned:
    with _arranged_lock:
        known = _arranged.get(id(index))
        if known is not None and known[0] is index:
            return known[1]
        arranged = _arrange(index)
        _arranged.clear()  # one index is current at a time
        _arranged[id(index)] = (index, arranged)
        return arranged


def _arrange(index: SearchIndex) -> _Twinned:
    cities = [index.cities[city_id] for city_id in index.sisters]  # by id
    numbers: dict[str, int] = {}
    by_country: dict[str, list[int]] = defaultdict(list)
    for city in cities:
        numbers.setdefault(city.country_code, len(numbers))
        by_country[city.country_code].append(city.id)
    busiest = {
        code: sorted(ids, key=lambda city_id: -len(index.sisters[city_id]))[: LIKE_YOURS + 1]
        for code, ids in by_country.items()
    }
    sized = sorted(
        (math.log10(city.population), city.id, city) for city in cities if city.population > 0
    )
    per_country: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for city in cities:
        if city.population > 0:
            per_country[city.country_code].append((math.log10(city.population), city.id))
    return _Twinned(
        log_sizes=np.array([size for size, _, _ in sized], dtype=np.float64),
        ids_by_size=np.array([city_id for _, city_id, _ in sized], dtype=np.int64),
        countries_by_size=np.array([numbers[c.country_code] for *_, c in sized], dtype=np.int32),
        latitudes_by_size=np.array([abs(c.latitude) for *_, c in sized], dtype=np.float64),
        population_by_size=np.array([c.population for *_, c in sized], dtype=np.int64),
        country_numbers=numbers,
        facts={city.id: (city.country_code, city.latitude, city.population) for city in cities},
        busiest_by_country=busiest,
        sized_by_country={
            code: (
                np.array([size for size, _ in rows], dtype=np.float64),
                np.array([city_id for _, city_id in rows], dtype=np.int64),
            )
            for code, rows in per_country.items()
        },
    )


def suggest_sisters(index: SearchIndex, city_id: int, limit: int = 10) -> dict:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}")
    city = index.cities.get(city_id)
    if city is None:
        raise NotFound(f"no city with id {city_id}")
    mine = index.sisters.get(city_id, set())

    shared_sisters: dict[int, list[int]] = defaultdict(list)
    for sister in mine:
        for candidate in index.sisters.get(sister, ()):
            shared_sisters[candidate].append(sister)

    like_yours = _cities_like(index, city)
    twinned_with_like: dict[int, list[int]] = defaultdict(list)
    for similar in like_yours:
        for candidate in index.sisters.get(similar, ()):
            twinned_with_like[candidate].append(similar)

    pool = {cid for cid in (*shared_sisters, *twinned_with_like)}
    # Cities already active in twinning, of a similar size: worth proposing on size and
    # climate alone when the graph says little (those the graph names are scored below).
    if city.population > 0:
        pool.update(_close_in_size(index, city, pool | mine | {city_id}, limit))

    # Score every candidate (all are twinned: their facts are arranged); write the reasons
    # only for those shown.
    facts = _twinned(index).facts
    scored = []
    for candidate_id in pool:
        country, latitude, population = facts[candidate_id]
        if candidate_id == city_id or candidate_id in mine or country == city.country_code:
            continue
        shared = shared_sisters.get(candidate_id, ())
        liked = twinned_with_like.get(candidate_id, ())
        size = _size_similarity(city.population, population)
        climate = _climate(city.latitude, latitude)
        if not (shared or liked or (size is not None and size >= 0.7) or climate >= 0.8):
            continue  # nothing to say for it
        network = min(1.0, (len(shared) + 0.5 * len(liked)) / 3.0)
        score = (
            WEIGHTS["network"] * network
            + WEIGHTS["size"] * (size if size is not None else 0.3)
            + WEIGHTS["climate"] * climate
        )
        scored.append((round(score, 3), -population, candidate_id))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    results = []
    for score, _pop, candidate_id in scored[:limit]:
        candidate = index.cities[candidate_id]
        result = city_summary(candidate, index.sister_count(candidate_id))
        reasons = _reasons(
            index,
            city,
            candidate,
            shared_sisters.get(candidate_id, []),
            twinned_with_like.get(candidate_id, []),
        )
        result.update(score=score, reasons=reasons)
        results.append(result)
    return {"results": results}


def _close_in_size(
    index: SearchIndex, city: CityRecord, scored_apart: set[int], limit: int
) -> list[int]:
    """The twinned cities of a similar size (similarity above 0.8: sizes within a factor of
    10**0.2) in another country that may be among the ``limit`` best on size and climate
    alone. The window's scores are the same floating-point sums the scoring makes; they are
    compared before rounding, so every city within a rounding step of the last place is
    kept and the scoring decides."""
    twinned = _twinned(index)
    mine_log = math.log10(city.population)
    low = int(np.searchsorted(twinned.log_sizes, mine_log - 0.21, side="left"))
    high = int(np.searchsorted(twinned.log_sizes, mine_log + 0.21, side="right"))
    size = 1.0 - np.abs(twinned.log_sizes[low:high] - mine_log)
    climate = np.maximum(
        0.0, 1.0 - np.abs(twinned.latitudes_by_size[low:high] - abs(city.latitude)) / 15.0
    )
    ids = twinned.ids_by_size[low:high]
    own_country = twinned.country_numbers.get(city.country_code, -1)
    keep = (size > 0.8) & (twinned.countries_by_size[low:high] != own_country)
    if scored_apart:
        keep &= ~np.isin(ids, np.fromiter(scored_apart, np.int64, len(scored_apart)))
    score = WEIGHTS["size"] * size[keep] + WEIGHTS["climate"] * climate[keep]
    ids = ids[keep]
    if len(ids) > limit:
        last_place = np.partition(score, len(score) - limit)[len(score) - limit]
        ids = ids[score >= last_place - 0.001]
    return ids.tolist()


def _reasons(
    index: SearchIndex,
    city: CityRecord,
    candidate: CityRecord,
    shared: list[int],
    liked: list[int],
) -> list[str]:
    reasons = []
    if shared:
        names = ", ".join(index.cities[s].name for s in shared[:3])
        reasons.append(
            f"Already twinned with your sister city {names}"
            if len(shared) == 1
            else f"Already twinned with {len(shared)} of your sister cities: {names}"
        )
    if liked:
        names = ", ".join(index.cities[s].name for s in liked[:3])
        reasons.append(
            f"Cities like yours in {country_name(city.country_code)} are twinned with it: {names}"
        )
    size = _size_similarity(city.population, candidate.population)
    if size is not None and size >= 0.7:
        reasons.append(
            f"Similar size: {_people(candidate.population)} (you: {_people(city.population)})"
        )
    if _climate_similarity(city, candidate) >= 0.8:
        hemisphere = (
            "" if (city.latitude >= 0) == (candidate.latitude >= 0) else ", in the other hemisphere"
        )
        reasons.append(
            f"Similar distance from the equator: {abs(candidate.latitude):.1f}° "
            f"(you: {abs(city.latitude):.1f}°{hemisphere})"
        )
    return reasons


def _cities_like(index: SearchIndex, city: CityRecord) -> list[int]:
    """Cities of the same country, active in twinning, closest in size (ties by id)."""
    twinned = _twinned(index)
    if city.population > 0:
        sizes, ids = twinned.sized_by_country.get(city.country_code, (np.empty(0), np.empty(0)))
        distance = np.abs(sizes - math.log10(city.population))
        others = ids != city.id
        distance, ids = distance[others], ids[others]
        if len(ids) > LIKE_YOURS:
            farthest = np.partition(distance, LIKE_YOURS - 1)[LIKE_YOURS - 1]
            near = distance <= farthest
            distance, ids = distance[near], ids[near]
        order = np.lexsort((ids, distance))
        return ids[order][:LIKE_YOURS].tolist()
    busiest = twinned.busiest_by_country.get(city.country_code, [])
    return [city_id for city_id in busiest if city_id != city.id][:LIKE_YOURS]
