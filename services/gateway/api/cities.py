"""The public API of the directory: City Search, a city with its sisters, suggestions."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from services.gateway.calls import hot, respond
from services.gateway.web.rate_limits import SEARCH, rate_limited
from shared.search_limits import COUNTRY_CHARS, QUERY_CHARS, RESULTS

bp = APIBlueprint("cities", __name__, tag="Cities", url_prefix="/api/v1/cities")


class SearchQuery(Schema):
    q = String(
        required=True, validate=Length(min=1, max=QUERY_CHARS), metadata={"example": "minnea"}
    )
    country = String(
        load_default=None,
        validate=Length(max=COUNTRY_CHARS),
        metadata={"description": "ISO code (US) or name (United States)"},
    )
    limit = Integer(load_default=10, validate=Range(min=1, max=RESULTS))


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
    merged_into = Integer(
        metadata={
            "description": "Only when the id asked for is a record staff merged into another "
            "of the same place: the survivor's id (the answer is the survivor's)"
        }
    )
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
@rate_limited(SEARCH)
@hot
@bp.input(SearchQuery, location="query", arg_name="query")
@bp.output(SearchOut)
@bp.doc(summary="City Search: any spelling, alternate names, prefixes, typos", responses=[503])
def search_cities(query: dict):
    return respond("directory.search_cities", **query)


@bp.get("/<int:city_id>")
@hot
@bp.input(CityQuery, location="query", arg_name="query")
@bp.output(CityDetailOut)
@bp.doc(summary="A city with its sister cities", responses=[404, 503])
def get_city(city_id: int, query: dict):
    return respond("directory.get_city", city_id=city_id, **query)


@bp.get("/<int:city_id>/suggestions")
@hot
@bp.input(SuggestionQuery, location="query", arg_name="query")
@bp.output(SuggestionsOut)
@bp.doc(summary="Cities that would make good new sisters, with reasons", responses=[404, 503])
def suggest_sisters(city_id: int, query: dict):
    return respond("directory.suggest_sisters", city_id=city_id, **query)
