"""City Search relevance on the real data (GeoNames + twin_cities.csv): the city that must come
first, for accents, alternate and historical names, prefixes, typos and ambiguous names."""

import pytest

from services.directory.search import search
from shared.errors import InvalidInput

pytestmark = pytest.mark.integration

# (query, country filter, expected first name, its country)
RELEVANCE = [
    ("sao paulo", None, "São Paulo", "BR"),
    ("São Paulo", None, "São Paulo", "BR"),
    ("SAO PAULO", None, "São Paulo", "BR"),
    ("koln", None, "Köln", "DE"),
    ("Cologne", None, "Köln", "DE"),
    ("Köln", None, "Köln", "DE"),
    ("st petersburg", None, "Saint Petersburg", "RU"),
    ("St. Petersburg", None, "Saint Petersburg", "RU"),
    ("saint-petersburg", None, "Saint Petersburg", "RU"),
    ("St. Petersburg", "US", "St. Petersburg", "US"),
    ("Leningrad", None, "Saint Petersburg", "RU"),
    ("Bombay", None, "Mumbai", "IN"),
    ("Peking", None, "Beijing", "CN"),
    ("Kiev", None, "Kyiv", "UA"),
    ("Calcutta", None, "Kolkata", "IN"),
    ("Madras", None, "Chennai", "IN"),
    ("Saigon", None, "Ho Chi Minh City", "VN"),
    ("minnea", None, "Minneapolis", "US"),
    ("Minneapols", None, "Minneapolis", "US"),
    ("Nashvile", None, "Nashville", "US"),
    ("Edinburh", None, "Edinburgh", "GB"),
    ("Melborne", None, "Melbourne", "AU"),
    ("Aukland", None, "Auckland", "NZ"),
    ("Johannesberg", None, "Johannesburg", "ZA"),
    ("Barcelon", None, "Barcelona", "ES"),
    ("Barcelona", None, "Barcelona", "ES"),
    ("los ang", None, "Los Angeles", "US"),
    ("Tamworth", "AU", "Tamworth", "AU"),
    ("Tamworth", "GB", "Tamworth", "GB"),
    ("Tamworth", "Australia", "Tamworth", "AU"),
    ("Paris", None, "Paris", "FR"),
    ("Paris", "US", "Paris", "US"),
    ("paris, france", None, "Paris", "FR"),
    ("munchen", None, "Munich", "DE"),
    ("München", None, "Munich", "DE"),
    ("zurich", None, "Zürich", "CH"),
    ("geneve", None, "Geneva", "CH"),
    ("Wien", None, "Vienna", "AT"),
    ("praha", None, "Prague", "CZ"),
    ("warszawa", None, "Warsaw", "PL"),
    ("moskva", None, "Moscow", "RU"),
    ("Москва", None, "Moscow", "RU"),
    ("東京", None, "Tokyo", "JP"),
    ("new york", None, "New York City", "US"),
    ("mexico city", None, "Mexico City", "MX"),
    ("Bogota", None, "Bogotá", "CO"),
    ("reykjavik", None, "Reykjavík", "IS"),
    ("Malmo", None, "Malmö", "SE"),
    ("Krakow", None, "Kraków", "PL"),
    ("Lodz", None, "Łódź", "PL"),
    ("Gdansk", None, "Gdańsk", "PL"),
    ("Dusseldorf", None, "Düsseldorf", "DE"),
    ("Nurnberg", None, "Nuremberg", "DE"),
    ("Lisboa", None, "Lisbon", "PT"),
    ("Roma", None, "Rome", "IT"),
    ("Firenze", None, "Florence", "IT"),
    ("Venezia", None, "Venice", "IT"),
    ("Napoli", None, "Naples", "IT"),
    ("Bruxelles", None, "Brussels", "BE"),
    ("Kobenhavn", None, "Copenhagen", "DK"),
    ("Najaf", None, "Najaf", "IQ"),
    ("Seattle", None, "Seattle", "US"),
    ("Hiroshima", None, "Hiroshima", "JP"),
    ("tel aviv", None, "Tel Aviv", "IL"),
]


@pytest.mark.parametrize(("query", "country", "name", "country_code"), RELEVANCE)
def test_the_right_city_comes_first(full_directory, query, country, name, country_code):
    results = search(full_directory.index, query, country)["results"]
    assert results, f"nothing found for {query!r}"
    first = results[0]
    assert (first["name"], first["country_code"]) == (name, country_code), [
        (r["name"], r["country_code"], r["match"]) for r in results[:5]
    ]


def test_an_ambiguous_name_puts_the_city_with_more_partnerships_first(full_directory):
    results = search(full_directory.index, "Springfield", "US", limit=20)["results"]
    exact = [r for r in results if r["match"] == "exact"]
    assert len(exact) >= 5
    assert results[: len(exact)] == exact
    most_partnerships = max(r["sister_count"] for r in exact)
    assert exact[0]["sister_count"] == most_partnerships
    assert exact[0]["population"] == max(
        r["population"] for r in exact if r["sister_count"] == most_partnerships
    )


def test_every_result_carries_what_the_site_shows(full_directory):
    [minneapolis] = search(full_directory.index, "Minneapolis", "US", limit=1)["results"]
    assert minneapolis["country"] == "United States"
    assert minneapolis["region"] == "Minnesota"
    assert minneapolis["population"] > 300_000
    assert minneapolis["sister_count"] >= 5
    assert abs(minneapolis["latitude"] - 44.98) < 0.1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 1000, "too long"),
        ("\x00\x01\x02", "no letters"),
        ("!!!", "no letters"),
        ("%", "no letters"),
        ("_", "no letters"),
    ],
)
def test_queries_no_one_could_mean_are_clear_errors(full_directory, query, message):
    with pytest.raises(InvalidInput, match=message):
        search(full_directory.index, query)


@pytest.mark.parametrize(
    "query", ["' OR 1=1 --", "%a%", "a_b", "Robert'); DROP TABLE cities;--", "<script>", "a\u202eb"]
)
def test_hostile_queries_are_just_text(full_directory, query):
    assert isinstance(search(full_directory.index, query)["results"], list)


def test_an_unknown_country_filter_is_a_clear_error(full_directory):
    with pytest.raises(InvalidInput, match="unknown country"):
        search(full_directory.index, "Paris", "Atlantis")
