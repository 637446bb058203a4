"""City Search relevance on the real data (GeoNames + twin_cities.csv): the city that must come
first, for accents, alternate and historical names, prefixes, typos, ambiguous names, "City,
Region" as people write it, and names in their own script (the table: relevance_table.py)."""

import pytest

from services.directory.config import DEFAULT_HOME_COUNTRY
from services.directory.search import search
from shared.errors import InvalidInput
from tests.directory.relevance_table import (
    ALTERNATE_TYPOS,
    CITY_REGION,
    NON_LATIN,
    PLAIN,
    RELEVANCE,
    SMALL_TOWNS,
    comes_first,
    is_present,
)

pytestmark = pytest.mark.integration

# Rows every version of the search must get right: the first relevance table, and the
# queries issue 14 found failing ("Portland, OR" found nothing; "Bombey" gave Bambey).
MUST = [
    *PLAIN[:64],
    *[
        row
        for row in CITY_REGION
        if row[0]
        in {
            "Portland, Oregon",
            "Portland, OR",
            "Athens, GA",
            "Athens, Georgia",
            "St. Paul, MN",
            "Springfield, Illinois",
            "London, Ontario",
            "Portland Oregon",
            "St Paul MN",
            "Munich, BY",
            "München, Bayern",
            "Newcastle, NSW",
            "Vancouver, B.C.",
            "Gatineau, Que.",
            "Ballarat, Vic",
            "Springfield, Mass.",
            "Lancaster, Penn.",
            "San Jose, Calif.",
            "London, Ontario, Canada",
            "Washington, D.C.",
        }
    ],
    *[row for row in ALTERNATE_TYPOS if row[0] in {"Bombey", "Leningrat", "Firenz", "Moskau"}],
    # Found wrong or not at all once cities500 was in: a small US town behind a bigger
    # namesake abroad, two slips in a big city's name, one in another name of a world city.
    *[row for row in RELEVANCE if row[0] in {"Excelsior", "Philadelfia", "Pekking", "Sagon"}],
]
SHARE_FIRST = 0.97
# The table is written for the organisation's deployment, searched from the United States.
HOME = DEFAULT_HOME_COUNTRY


@pytest.mark.parametrize(("query", "country", "name", "country_code", "region"), MUST)
def test_the_right_city_comes_first(full_directory, query, country, name, country_code, region):
    results = search(full_directory.index, query, country, home_country=HOME)["results"]
    assert results, f"nothing found for {query!r}"
    assert comes_first(results, (query, country, name, country_code, region)), [
        (r["name"], r["country_code"], r["region"], r["match"]) for r in results[:5]
    ]


def test_the_relevance_table_is_wide():
    hard = CITY_REGION + ALTERNATE_TYPOS + NON_LATIN + SMALL_TOWNS
    assert len(RELEVANCE) >= 300
    assert len(hard) >= len(RELEVANCE) / 3
    assert len({(query, country) for query, country, *_ in RELEVANCE}) == len(RELEVANCE)


def test_the_right_place_comes_first_for_nearly_every_query_of_the_table(full_directory, capsys):
    index = full_directory.index
    missing = [row for row in RELEVANCE if not is_present(index, row)]
    # A place the table expects that the directory lacks is a mistake in the table: with
    # cities500 imported, the small towns are scored too.
    assert missing == []
    rows = [row for row in RELEVANCE if row not in missing]
    misses = [
        (row[0], [(r["name"], r["country_code"], r["region"]) for r in results[:2]])
        for row in rows
        if not comes_first(results := search(index, *row[:2], home_country=HOME)["results"], row)
    ]
    share = 1 - len(misses) / len(rows)
    with capsys.disabled():
        print(f"\nrelevance table: right place first for {share:.1%} of {len(rows)} queries")
    assert share >= SHARE_FIRST, misses


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


@pytest.mark.parametrize(("query", "region"), [("sa, NY", "New York"), ("s, Calif.", "California")])
def test_a_short_prefix_and_a_region_put_the_cities_of_that_region_first(
    full_directory, query, region
):
    results = search(full_directory.index, query)["results"]
    in_region = [r["region"] == region for r in results]
    assert in_region[0]
    assert in_region == sorted(in_region, reverse=True)


def test_a_place_that_does_not_fit_still_gives_a_guess(full_directory):
    [first] = search(full_directory.index, "Minneapolis, Ohio", limit=1)["results"]
    assert (first["name"], first["region"]) == ("Minneapolis", "Minnesota")


def test_every_answer_shows_the_region(full_directory):
    results = search(full_directory.index, "Springfield, IL")["results"]
    assert all("region" in r for r in results)
    assert results[0]["region"] == "Illinois"


def test_the_home_country_puts_its_small_town_before_a_bigger_namesake_abroad(full_directory):
    index = full_directory.index
    abroad_first = search(index, "Excelsior", home_country=None)["results"]
    assert [(r["country_code"], r["region"]) for r in abroad_first[:2]] == [
        ("ZA", "Orange Free State"),
        ("US", "Minnesota"),
    ]
    assert abroad_first[0]["population"] > abroad_first[1]["population"]
    [first] = search(index, "Excelsior", home_country="US", limit=1)["results"]
    assert (first["country_code"], first["region"]) == ("US", "Minnesota")
    # A city is not a small town: the bigger namesake abroad stays first.
    [birmingham] = search(index, "Birmingham", home_country="US", limit=1)["results"]
    assert birmingham["country_code"] == "GB"


def test_two_slips_in_a_big_citys_name_still_reach_it(full_directory):
    for query, name in [
        ("Philadelfia", "Philadelphia"),
        ("Filadelphia", "Philadelphia"),
        ("Mineapolls", "Minneapolis"),
        ("Barselonna", "Barcelona"),
    ]:
        results = search(full_directory.index, query, home_country=HOME)["results"]
        assert results, query
        assert (results[0]["name"], results[0]["match"]) == (name, "fuzzy"), results[0]
