"""Cities that would make good new sisters, each with a score and the plain reasons for it.

Three signals: the partnership graph ("twinned with two of your sisters"; "cities like yours
in your country are twinned with it"), similar size, and a similar distance from the equator
(a similar climate band). Never the city's own country, never a city it is already twinned
with.
"""

from __future__ import annotations

import math
from collections import defaultdict

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
    # climate alone when the graph says little.
    for candidate in index.cities.values():
        if candidate.id in index.sisters:
            size = _size_similarity(city.population, candidate.population)
            if size is not None and size > 0.8:
                pool.add(candidate.id)

    scored = []
    for candidate_id in pool:
        candidate = index.cities[candidate_id]
        if not eligible(candidate):
            continue
        reasons = []
        shared = shared_sisters.get(candidate_id, [])
        liked = twinned_with_like.get(candidate_id, [])
        network = min(1.0, (len(shared) + 0.5 * len(liked)) / 3.0)
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
                f"Cities like yours in {country_name(city.country_code)} are twinned with it: "
                f"{names}"
            )
        size = _size_similarity(city.population, candidate.population)
        if size is not None and size >= 0.7:
            reasons.append(
                f"Similar size: {_people(candidate.population)} (you: {_people(city.population)})"
            )
        climate = _climate_similarity(city, candidate)
        if climate >= 0.8:
            hemisphere = (
                ""
                if (city.latitude >= 0) == (candidate.latitude >= 0)
                else ", in the other hemisphere"
            )
            reasons.append(
                f"Similar distance from the equator: {abs(candidate.latitude):.1f}° "
                f"(you: {abs(city.latitude):.1f}°{hemisphere})"
            )
        if not reasons:
            continue
        score = (
            WEIGHTS["network"] * network
            + WEIGHTS["size"] * (size if size is not None else 0.3)
            + WEIGHTS["climate"] * climate
        )
        scored.append((round(score, 3), -candidate.population, candidate_id, reasons))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    results = []
    for score, _pop, candidate_id, reasons in scored[:limit]:
        candidate = index.cities[candidate_id]
        result = candidate.as_result(index.sister_count(candidate_id))
        result.update(score=score, reasons=reasons)
        results.append(result)
    return {"results": results}


def _cities_like(index: SearchIndex, city: CityRecord) -> list[int]:
    """Cities of the same country, active in twinning, closest in size."""
    same_country = [
        candidate
        for candidate in index.cities.values()
        if candidate.country_code == city.country_code
        and candidate.id != city.id
        and candidate.id in index.sisters
    ]
    if city.population > 0:
        same_country = [c for c in same_country if c.population > 0]
        same_country.sort(key=lambda c: abs(math.log10(c.population) - math.log10(city.population)))
    else:
        same_country.sort(key=lambda c: -len(index.sisters[c.id]))
    return [c.id for c in same_country[:LIKE_YOURS]]
