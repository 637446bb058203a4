"""A city with its sisters, suggested new sisters and place names found in text, on the real
data."""

import pytest

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
