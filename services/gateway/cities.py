"""The public API of the directory: City Search, a city with its sisters, suggestions."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from services.gateway.cached_answers import cached_json, hot

bp = APIBlueprint("cities", __name__, tag="Cities", url_prefix="/api/v1/cities")


class SearchQuery(Schema):
    q = String(required=True, validate=Length(min=1, max=200), metadata={"example": "minnea"})
    country = String(
        load_default=None,
        validate=Length(max=100),
        metadata={"description": "ISO code (US) or name (United States)"},
    )
    limit = Integer(load_default=10, validate=Range(min=1, max=100))


class PlaceOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    country_code = String(required=True)
    country = String(required=True)
    region = String(allow_none=True)
    latitude = Float(required=True)
    longitude = Float(required=True)


class CityOut(PlaceOut):
    population = Integer(required=True)
    sister_count = Integer(required=True)


class SearchResult(CityOut):
    match = String(metadata={"description": "exact, alternate, prefix or fuzzy"})


class SearchOut(Schema):
    results = List(Nested(SearchResult), required=True)


class SisterOut(PlaceOut):
    partnership_id = Integer(required=True)
    since = Integer(allow_none=True)
    status = String(required=True)
    distance_km = Float(required=True)


class CountOut(Schema):
    name = String(required=True)
    count = Integer(required=True)


class CityDetailOut(CityOut):
    timezone = String(allow_none=True)
    sisters = List(Nested(SisterOut), required=True)
    countries = List(Nested(CountOut), required=True)
    continents = List(Nested(CountOut), required=True)


class CityQuery(Schema):
    sort = String(load_default="distance", validate=OneOf(("distance", "year", "name")))


class SuggestionQuery(Schema):
    limit = Integer(load_default=10, validate=Range(min=1, max=50))


class SuggestionOut(CityOut):
    score = Float(required=True)
    reasons = List(String(), required=True)


class SuggestionsOut(Schema):
    results = List(Nested(SuggestionOut), required=True)


@bp.get("")
@hot("directory", "search")
@bp.input(SearchQuery, location="query", arg_name="query")
@bp.output(SearchOut)
@bp.doc(summary="City Search: any spelling, alternate names, prefixes, typos", responses=[503])
def search_cities(query: dict):
    return cached_json("directory", "search", query, "directory.search_cities", **query)


@bp.get("/<int:city_id>")
@hot("directory", "city")
@bp.input(CityQuery, location="query", arg_name="query")
@bp.output(CityDetailOut)
@bp.doc(summary="A city with its sister cities", responses=[404, 503])
def get_city(city_id: int, query: dict):
    params = {"id": city_id, **query}
    return cached_json("directory", "city", params, "directory.get_city", city_id, query["sort"])


@bp.get("/<int:city_id>/suggestions")
@hot("directory", "suggestions")
@bp.input(SuggestionQuery, location="query", arg_name="query")
@bp.output(SuggestionsOut)
@bp.doc(summary="Cities that would make good new sisters, with reasons", responses=[404, 503])
def suggest_sisters(city_id: int, query: dict):
    return cached_json(
        "directory",
        "suggestions",
        {"id": city_id, **query},
        "directory.suggest_sisters",
        city_id,
        query["limit"],
    )
