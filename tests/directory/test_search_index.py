"""The columnar search index: names, prefixes and the places behind them, as the search reads
them."""

import random

from services.directory.search import search
from services.directory.search_index import CityRecord, NameTable, build_index

CITIES = [
    CityRecord(7, "Saint Paul", "US", "Minnesota", 44.9, -93.1, 300_000),
    CityRecord(3, "Saintes", "FR", "Nouvelle-Aquitaine", 45.7, -0.6, 25_000),
    CityRecord(5, "Köln", "DE", "North Rhine-Westphalia", 50.9, 6.9, 1_000_000),
    CityRecord(9, "Salzburg", "AT", "Salzburg", 47.8, 13.0, 150_000),
]
NAMES = [(5, "cologne"), (5, "koeln"), (7, "st paul"), (42, "a city no one has")]


def test_a_name_table_finds_names_and_prefixes_in_any_script():
    table = NameTable(sorted(["köln", "koln", "saint paul", "saintes", "東京", "zurich"]))
    assert table.position("saintes") == 3
    assert table.position("saint") is None
    assert [table[i] for i in range(*table.span("saint"))] == ["saint paul", "saintes"]
    assert [table[i] for i in range(*table.span("東"))] == ["東京"]
    assert "köln" in table and "kol" not in table


def test_the_index_answers_by_city_id_as_before():
    index = build_index(1, CITIES, NAMES, [(7, 5), (7, 9)])
    assert index.ids_by_name["cologne"] == (5,)
    assert index.ids_by_name.get("a city no one has") is None
    assert index.own_name[5] == "koln"
    assert index.cities[9].name == "Salzburg"
    assert sorted(index.cities) == [3, 5, 7, 9]
    assert index.sister_count(7) == 2 and index.sister_count(3) == 0


def test_a_prefix_finds_own_and_other_names():
    index = build_index(1, CITIES, NAMES, [])
    found = {r["name"]: r["match"] for r in search(index, "co")["results"]}
    assert found == {"Köln": "prefix"}
    assert [r["name"] for r in search(index, "saint")["results"]] == ["Saint Paul", "Saintes"]


def test_a_wide_prefix_ranks_own_names_first_then_partnerships_then_people():
    cities = [CityRecord(n, f"Sa{n:04d}", "US", None, 0.0, 0.0, n * 10) for n in range(1, 400)] + [
        CityRecord(1000, "Big", "US", None, 0.0, 0.0, 10**7)
    ]
    index = build_index(1, cities, [(1000, "sabig")], [(5, 6)])
    ranked = [index.ids[row] for row in index.wide_prefix("sa")]
    assert ranked[:3] == [6, 5, 399]  # partnerships first, then people
    assert 1000 not in ranked  # "Big" begins with "sa" only by another name
    assert index.wide_prefix("sa0001") is None


def test_a_name_table_of_many_names_finds_what_a_sorted_list_finds():
    rng = random.Random(14)
    letters = "abcdeéö東 "
    names = sorted({"".join(rng.choices(letters, k=rng.randint(1, 6))) for _ in range(3000)})
    table = NameTable(names)
    for _ in range(500):
        probe = "".join(rng.choices(letters, k=rng.randint(1, 4)))
        expected = [name for name in names if name.startswith(probe)]
        assert [table[i] for i in range(*table.span(probe))] == expected, probe
        assert table.position(probe) == (names.index(probe) if probe in names else None)


def test_partnerships_alone_never_put_a_typo_before_an_exact_name():
    """Town 00 with 17 sisters is one letter from Town 20 with none; a search for Town 20
    means Town 20 (a sentinel failover test met this)."""
    towns = [CityRecord(n + 1, f"Failover Town {n:02d}", "US", None, 30.0, -100.0, 10_000 + n)
             for n in range(30)]  # fmt: skip
    pairs = [(1, n) for n in range(2, 19)]
    index = build_index(1, towns, [], pairs)
    first = search(index, "Failover Town 20")["results"][0]
    assert (first["name"], first["match"]) == ("Failover Town 20", "exact")
