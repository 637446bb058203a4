"""Cities that would make good new sisters, each with a score and the plain reasons for it.

Three signals: the partnership graph ("twinned with two of your sisters"; "cities like yours
in your country are twinned with it"), similar size, and a similar distance from the equator
(a similar climate band). Never the city's own country, never a city it is already twinned
with.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import defaultdict
from dataclasses import dataclass

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
    return max(0.0, 1.0 - abs(abs(a.latitude) - abs(b.latitude)) / 15.0)


def _people(n: int) -> str:
    return f"{n:,} people"


@dataclass(frozen=True)
class _Twinned:
    """The cities active in twinning, arranged once per search index: by size (log10 of the
    population, for a window search instead of a scan of every city) and by country."""

    log_sizes: list[float]
    ids_by_size: list[int]
    by_country: dict[str, list[int]]


_arranged: dict[int, tuple[SearchIndex, _Twinned]] = {}
_arranged_lock = threading.Lock()


def _twinned(index: SearchIndex) -> _Twinned:
    with _arranged_lock:
        known = _arranged.get(id(index))
        if known is not None and known[0] is index:
            return known[1]
    sized = sorted(
        (math.log10(city.population), city.id)
        for city_id, city in index.cities.items()
        if city_id in index.sisters and city.population > 0
    )
    by_country: dict[str, list[int]] = defaultdict(list)
    for city_id, city in index.cities.items():
        if city_id in index.sisters:
            by_country[city.country_code].append(city_id)
    arranged = _Twinned([size for size, _ in sized], [cid for _, cid in sized], dict(by_country))
    with _arranged_lock:
        _arranged.clear()  # one index is current at a time
        _arranged[id(index)] = (index, arranged)
    return arranged


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

    def eligible(candidate: CityRecord) -> bool:
        return (
            candidate.id != city_id
            and candidate.id not in mine
            and candidate.country_code != city.country_code
        )

    pool = {cid for cid in (*shared_sisters, *twinned_with_like)}
    # Cities already active in twinning, of a similar size: worth proposing on size and
    # climate alone when the graph says little. Similarity above 0.8 means sizes within a
    # factor of 10**0.2; the window is searched a little wider and the test applied exactly.
    if city.population > 0:
        twinned = _twinned(index)
        mine_log = math.log10(city.population)
        low = bisect.bisect_left(twinned.log_sizes, mine_log - 0.21)
        high = bisect.bisect_right(twinned.log_sizes, mine_log + 0.21)
        for candidate_id in twinned.ids_by_size[low:high]:
            size = _size_similarity(city.population, index.cities[candidate_id].population)
            if size is not None and size > 0.8:
                pool.add(candidate_id)

    # Score every candidate; write the reasons only for those shown.
    scored = []
    for candidate_id in pool:
        candidate = index.cities[candidate_id]
        if not eligible(candidate):
            continue
        shared = shared_sisters.get(candidate_id, ())
        liked = twinned_with_like.get(candidate_id, ())
        size = _size_similarity(city.population, candidate.population)
        climate = _climate_similarity(city, candidate)
        if not (shared or liked or (size is not None and size >= 0.7) or climate >= 0.8):
            continue  # nothing to say for it
        network = min(1.0, (len(shared) + 0.5 * len(liked)) / 3.0)
        score = (
            WEIGHTS["network"] * network
            + WEIGHTS["size"] * (size if size is not None else 0.3)
            + WEIGHTS["climate"] * climate
        )
        scored.append((round(score, 3), -candidate.population, candidate_id))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    results = []
    for score, _pop, candidate_id in scored[:limit]:
        candidate = index.cities[candidate_id]
        result = candidate.as_result(index.sister_count(candidate_id))
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
    """Cities of the same country, active in twinning, closest in size."""
    same_country = [
        index.cities[candidate_id]
        for candidate_id in _twinned(index).by_country.get(city.country_code, ())
        if candidate_id != city.id
    ]
    if city.population > 0:
        same_country = [c for c in same_country if c.population > 0]
        same_country.sort(key=lambda c: abs(math.log10(c.population) - math.log10(city.population)))
    else:
        same_country.sort(key=lambda c: -len(index.sisters[c.id]))
    return [c.id for c in same_country[:LIKE_YOURS]]
