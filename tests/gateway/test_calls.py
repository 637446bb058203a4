"""One way to call a service (``services/gateway/calls.py``): a cached answer is named by its
task and keyed by the parameters of the call, so the API and the pages share it whenever they
ask the same thing; what makes it stale is declared in the routing table."""

import hashlib
import json

import pytest

from services.gateway.calls import call
from shared.routing import CACHE_GENERATIONS, GENERATION_KEY, SERVICES, mark_stale

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def cache_key(task: str, params: dict) -> str:
    digest = hashlib.sha1(
        json.dumps(params, sort_keys=True).encode(), usedforsecurity=False
    ).hexdigest()
    return f"sistercities:cache:{task}:{digest}"


@pytest.mark.integration
def test_the_page_is_served_the_answer_the_api_cached_for_the_same_call(
    client, gateway_app, three_cities, redis_client
):
    search = {"q": "Gammaton", "country": None, "limit": 20}
    assert client.get("/api/v1/cities", query_string=search).status_code == 200
    key = cache_key("directory.search_cities", search)
    generation, _, body = redis_client.get(key).decode().partition("\n")
    answer = json.loads(body)
    assert answer["results"][0]["name"] == "Gammaton"
    # Changed in Redis only: if the page shows it, the page read the API's entry.
    answer["results"][0]["name"] = "Gammaton-from-the-API's-entry"
    redis_client.set(key, f"{generation}\n{json.dumps(answer)}")
    gateway_app.extensions["sistercities"].cache.forget_local()  # read Redis again
    page = client.get("/cities", query_string={"q": "Gammaton"}, headers=BROWSER)
    assert "Gammaton-from-the-API&#39;s-entry" in page.text


def test_a_cached_call_names_its_parameters(gateway_app):
    with gateway_app.test_request_context(), pytest.raises(TypeError, match="names its"):
        call("directory.get_city", 7, cached=True)


def test_every_change_in_the_routing_table_moves_a_services_generation():
    assert set(CACHE_GENERATIONS.values()) <= set(SERVICES)


def test_marking_a_change_stale_moves_its_generation_and_an_unknown_change_is_refused(
    redis_client,
):
    before = int(redis_client.get(GENERATION_KEY.format("blog")) or 0)
    mark_stale(redis_client, "blog.posts_changed")
    assert int(redis_client.get(GENERATION_KEY.format("blog"))) == before + 1
    with pytest.raises(KeyError):
        mark_stale(redis_client, "blog.something_nobody_declared")
