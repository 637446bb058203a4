"""A city with its sisters, suggested new sisters and place names found in text, on the real
data."""

import math
import random
from collections import defaultdict

import pytest

from services.directory import suggestions
from services.directory.city_details import get_city
from services.directory.places import match_places
from services.directory.search import search
from services.directory.suggestions import suggest_sisters
from shared.db import make_session_factory
from shared.errors import InvalidInput, NotFound

pytestmark = pytest.mark.integration


def _city_id(full_directory, name: str, country: str) -> int:
    return search(full_directory.index, name, country, limit=1)["results"][0]["id"]


def test_a_city_lists_its_sisters_with_distance_and_counts(full_directory):
    minneapolis = _city_id(full_directory, "Minneapolis", "US")
    with make_session_factory(full_directory.engine)() as session:
        city = get_city(session, minneapolis)
        by_year = get_city(session, minneapolis, sort="year")
    names = {(s["name"], s["country_code"]) for s in city["sisters"]}
    assert ("Najaf", "IQ") in names
    najaf = next(s for s in city["sisters"] if s["name"] == "Najaf")
    assert 10_000 < najaf["distance_km"] < 11_000
    distances = [s["distance_km"] for s in city["sisters"]]
    assert distances == sorted(distances)
    assert sum(c["count"] for c in city["countries"]) == city["sister_count"] == len(names)
    assert sum(c["count"] for c in city["continents"]) == city["sister_count"]
    years = [s["since"] for s in by_year["sisters"] if s["since"] is not None]
    assert years == sorted(years)


def test_unknown_cities_and_sorts_are_clear_errors(full_directory):
    with make_session_factory(full_directory.engine)() as session:
        with pytest.raises(NotFound, match="no city with id 999999999"):
            get_city(session, 999_999_999)
        with pytest.raises(InvalidInput, match="sort must be one of"):
            get_city(session, 1, sort="random")


@pytest.mark.parametrize(
    ("name", "country"), [("Minneapolis", "US"), ("Köln", "DE"), ("Tamworth", "AU")]
)
def test_suggestions_are_new_foreign_cities_with_reasons(full_directory, name, country):
    city_id = _city_id(full_directory, name, country)
    sisters = full_directory.index.sisters.get(city_id, set())
    results = suggest_sisters(full_directory.index, city_id, limit=10)["results"]
    assert len(results) == 10
    for suggestion in results:
        assert suggestion["id"] not in sisters
        assert suggestion["id"] != city_id
        assert suggestion["country_code"] != country
        assert suggestion["reasons"]
        assert 0 < suggestion["score"] <= 1
    scores = [s["score"] for s in results]
    assert scores == sorted(scores, reverse=True)


def test_the_partnership_graph_speaks_in_the_reasons(full_directory):
    koln = _city_id(full_directory, "Köln", "DE")
    results = suggest_sisters(full_directory.index, koln, limit=10)["results"]
    assert any("your sister cities" in reason for s in results for reason in s["reasons"])


def test_a_city_without_partners_still_gets_suggestions(full_directory):
    lonely = next(
        city
        for city in full_directory.index.cities.values()
        if city.id not in full_directory.index.sisters and city.population > 200_000
    )
    results = suggest_sisters(full_directory.index, lonely.id, limit=5)["results"]
    assert results
    assert all(r["country_code"] != lonely.country_code for r in results)


def scored_one_by_one(index, city_id: int, limit: int) -> list[tuple[float, int]]:
    """The rule, city by city over every twinned city: candidates are the cities twinned with
    a sister or with one of the 25 cities of the same country closest in size (busiest when
    the size is not known), and those of a similar size (similarity above 0.8); never a
    sister, the city or its country; the best scores first, then the biggest, then by id."""
    city, mine = index.cities[city_id], index.sisters.get(city_id, set())
    twinned = [index.cities[other] for other in index.sisters]
    same_country = [c for c in twinned if c.country_code == city.country_code and c.id != city_id]
    if city.population > 0:
        known = [c for c in same_country if c.population > 0]
        gap = {c.id: abs(math.log10(c.population) - math.log10(city.population)) for c in known}
        like = sorted(known, key=lambda c: (gap[c.id], c.id))[: suggestions.LIKE_YOURS]
    else:
        like = sorted(same_country, key=lambda c: (-len(index.sisters[c.id]), c.id))
        like = like[: suggestions.LIKE_YOURS]
    shared, liked = defaultdict(int), defaultdict(int)
    for sister in mine:
        for candidate in index.sisters[sister]:
            shared[candidate] += 1
    for similar in like:
        for candidate in index.sisters[similar.id]:
            liked[candidate] += 1
    scored = []
    for candidate in twinned:
        size = suggestions._size_similarity(city.population, candidate.population)
        named = candidate.id in shared or candidate.id in liked
        if not (named or (city.population > 0 and size is not None and size > 0.8)):
            continue
        if candidate.id == city_id or candidate.id in mine:
            continue
        if candidate.country_code == city.country_code:
            continue
        climate = suggestions._climate_similarity(city, candidate)
        if not (named or (size is not None and size >= 0.7) or climate >= 0.8):
            continue
        network = min(1.0, (shared[candidate.id] + 0.5 * liked[candidate.id]) / 3.0)
        score = 0.5 * network + 0.3 * (size if size is not None else 0.3) + 0.2 * climate
        scored.append((round(score, 3), -candidate.population, candidate.id))
    return [(score, city_id) for score, _, city_id in sorted(scored, key=lambda s: (-s[0], s[1:]))][
        :limit
    ]


def test_suggestions_follow_the_rule_city_by_city(full_directory):
    """Suggestions are made from arrays arranged when the index loads, scoring a window of
    sizes at once: the same answers as the rule applied to every twinned city."""
    index = full_directory.index
    rng = random.Random(19)
    twinned = list(index.sisters)
    unknown_size = [c for c in rng.sample(twinned, 2000) if index.cities[c].population <= 0]
    lonely = [c.id for c in index.cities.values() if c.id not in index.sisters][::20000]
    for city_id in rng.sample(twinned, 25) + unknown_size[:5] + lonely[:5]:
        results = suggest_sisters(index, city_id, limit=6)["results"]
        assert [(r["score"], r["id"]) for r in results] == scored_one_by_one(index, city_id, 6)


def test_suggestions_for_an_unknown_city_are_not_found(full_directory):
    with pytest.raises(NotFound):
        suggest_sisters(full_directory.index, 999_999_999)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "A Minneapolis delegation visited Najaf to mark the partnership.",
            [("Minneapolis", "US"), ("Najaf", "IQ")],
        ),
        ("It was a nice day for reading on my mobile in the bath.", []),
        ("Students from Nice, France met their peers.", [("Nice", "FR")]),
        (
            "The Bath and Aix-en-Provence choirs sang together.",
            [("Bath", "GB"), ("Aix-en-Provence", "FR")],
        ),
        ("A quiet bath in Alexandria.", [("Alexandria", "EG")]),
        ("Cologne and São Paulo signed a climate pact.", [("Köln", "DE"), ("São Paulo", "BR")]),
        (
            "Tamworth welcomed guests from Nashville for the music festival.",
            [("Tamworth", "AU"), ("Nashville", "US")],
        ),
    ],
)
def test_places_in_text_are_found_precisely(full_directory, text, expected):
    found = [
        (r["name"], r["country_code"]) for r in match_places(full_directory.index, text)["results"]
    ]
    assert found == expected


def test_text_that_is_too_long_is_refused(full_directory):
    with pytest.raises(InvalidInput, match="too long"):
        match_places(full_directory.index, "Paris " * 50_000)
