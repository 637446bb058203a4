"""City Search and city pages through the gateway, answered by the real directory worker,
cached in Redis and invalidated when the directory changes."""

import pytest

from services.gateway.api.cities import CityDetailOut, SearchOut, SuggestionsOut
from tests.conftest import add_test_cities, wait_for_search_index
from tests.stack import wait_for

pytestmark = pytest.mark.integration

PLACES = [
    ("Minneapolis", "US", 44.98, -93.26, 410_939),
    ("Najaf", "IQ", 32.0, 44.33, 482_576),
    ("Tours", "FR", 47.39, 0.69, 136_463),
    ("Köln", "DE", 50.94, 6.96, 1_024_621),
]


@pytest.fixture
def places(clean_databases, stack, services):
    ids = dict(
        zip(
            [p[0] for p in PLACES],
            add_test_cities(clean_databases["directory"], PLACES),
            strict=True,
        )
    )
    wait_for_search_index(services)
    yield ids


def _search(client, **params):
    return client.get("/api/v1/cities", query_string=params)


def test_search_finds_cities_by_any_spelling_through_the_gateway(client, places):
    def found():
        # Until the worker reloads its index it may still answer with an earlier test's Köln.
        response = _search(client, q="koln")
        results = response.json["results"] if response.status_code == 200 else []
        return results if results and results[0]["id"] == places["Köln"] else None

    results = wait_for(found, timeout=20, what="the directory to index the new cities")
    assert results[0]["id"] == places["Köln"]
    assert results[0]["country"] == "Germany"
    assert set(results[0]) >= {
        "id",
        "name",
        "country_code",
        "country",
        "region",
        "latitude",
        "longitude",
        "population",
        "sister_count",
    }
    assert _search(client, q="minnea").json["results"][0]["name"] == "Minneapolis"
    assert _search(client, q="Minneapols").json["results"][0]["name"] == "Minneapolis"
    assert _search(client, q="Tours", country="France").json["results"][0]["id"] == places["Tours"]
    assert _search(client, q="Tours", country="US").json["results"] == []


def test_a_new_partnership_shows_on_the_city_page_and_in_search(client, places, admin_headers):
    minneapolis, najaf = places["Minneapolis"], places["Najaf"]
    wait_for(
        lambda: [r["id"] for r in _search(client, q="Najaf").json.get("results", [])] == [najaf],
        timeout=20,
        what="the new cities to be searchable",
    )
    assert client.get(f"/api/v1/cities/{minneapolis}").json["sisters"] == []
    assert _search(client, q="Najaf").json["results"][0]["sister_count"] == 0

    response = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": minneapolis, "sister_city_id": najaf, "since": 2009},
        headers=admin_headers,
    )
    assert response.status_code == 201

    def city_page_shows_najaf():
        sisters = client.get(f"/api/v1/cities/{minneapolis}").json["sisters"]
        return [(s["name"], s["since"], s["status"]) for s in sisters] == [
            ("Najaf", 2009, "active")
        ]

    wait_for(city_page_shows_najaf, timeout=10, what="the cached city page to be invalidated")
    page = client.get(f"/api/v1/cities/{minneapolis}").json
    assert 10_000 < page["sisters"][0]["distance_km"] < 11_000
    assert page["countries"] == [{"name": "Iraq", "count": 1}]
    wait_for(
        lambda: _search(client, q="Najaf").json["results"][0]["sister_count"] == 1,
        timeout=20,
        what="search to count the new sister",
    )
    suggestions = client.get(f"/api/v1/cities/{minneapolis}/suggestions").json
    assert all(s["id"] != najaf and s["country_code"] != "US" for s in suggestions["results"])
    # Every answer is exactly the documented shape: no field missing, none extra.
    assert CityDetailOut().validate(page) == {}
    assert SearchOut().validate(_search(client, q="Najaf").json) == {}
    assert SuggestionsOut().validate(suggestions) == {}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 1000}, "q"),
        ({"q": "paris", "limit": "0"}, "limit"),
        ({"q": "paris", "limit": "many"}, "limit"),
        ({"q": "paris", "limit": "1000"}, "limit"),
    ],
)
def test_bad_search_requests_are_400s_naming_the_field(client, params, field):
    response = _search(client, **params)
    assert response.status_code == 400
    assert field in response.json["error"]["message"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "\x00\x01"}, "no letters"),
        ({"q": "!!!"}, "no letters"),
        ({"q": "paris", "country": "Atlantis"}, "unknown country"),
    ],
)
def test_queries_the_directory_refuses_are_400s(client, stack, params, message):
    response = _search(client, **params)
    assert response.status_code == 400
    assert message in response.json["error"]["message"]


def test_hostile_text_is_searched_not_reflected(client, stack):
    for q in ["<script>alert(1)</script>", "' OR 1=1 --", "%_%"]:
        response = _search(client, q=q)
        assert response.status_code in (200, 400)
        assert "<script>" not in response.get_data(as_text=True)
    refused = _search(client, q="paris", country="<script>alert(1)</script>")
    assert refused.status_code == 400
    assert "<script>" not in refused.get_data(as_text=True)


def test_unknown_cities_are_404s(client, stack):
    assert client.get("/api/v1/cities/999999").status_code == 404
    assert client.get("/api/v1/cities/999999/suggestions").status_code == 404
    assert client.get("/api/v1/cities/not-a-number").status_code == 404
    assert client.get("/api/v1/cities/1?sort=random").status_code == 400
