"""Admin API: staff's corrections of a city, through the directory service's tasks."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Float, Integer, List, String
from apiflask.validators import Length, Range

from services.gateway.api.admin_auth import admin_auth
from services.gateway.api.cities import PlaceOut
from services.gateway.calls import call
from services.gateway.input_limits import ID

bp = APIBlueprint("admin_cities", __name__, tag="Admin", url_prefix="/api/v1/admin")

NAME = Length(min=1, max=200)


class CityChanges(Schema):
    name = String(validate=NAME, metadata={"example": "Mumbai"})
    alternate_names = List(
        String(validate=NAME),
        validate=Length(max=200),
        metadata={"description": "Every other name it is searched by (the list replaces them)"},
    )
    region = String(allow_none=True, validate=Length(max=200))
    population = Integer(strict=True, validate=Range(min=0, max=2**31 - 1))
    latitude = Float(validate=Range(min=-90, max=90), allow_nan=False)
    longitude = Float(validate=Range(min=-180, max=180), allow_nan=False)


class CityRecordOut(PlaceOut):
    alternate_names = List(String(), required=True)
    population = Integer(required=True)
    source = String(required=True, metadata={"description": "geonames, import or staff"})
    partnership_count = Integer(required=True)


@bp.put("/cities/<int:city_id>")
@bp.auth_required(admin_auth)
@bp.input(CityChanges, arg_name="body")
@bp.output(CityRecordOut)
@bp.doc(
    summary="Correct a city's names, region, population or coordinates",
    description="The fields sent are changed, the others stay. The change is on the audit log "
    "under the caller's name; City Search and the public pages follow within seconds.",
    responses=[400, 404, 503],
)
def update_city(city_id: int, body: dict):
    return call("directory.update_city", city_id, body)


class MergeIn(Schema):
    into = Integer(
        required=True,
        strict=True,
        validate=ID,
        metadata={"description": "The survivor: the record of the same place that stays"},
    )


class MergeOut(Schema):
    merged = Integer(required=True, metadata={"description": "The duplicate, a tombstone now"})
    into = Integer(required=True)
    partnerships_moved = List(Integer(), required=True)
    partnerships_removed = List(
        Integer(),
        required=True,
        metadata={
            "description": "The duplicate's partnerships with a sister the survivor already "
            "had, and one between the two"
        },
    )


@bp.post("/cities/<int:city_id>/merge")
@bp.auth_required(admin_auth)
@bp.input(MergeIn, arg_name="body")
@bp.output(MergeOut)
@bp.doc(
    summary="Merge a duplicate city record into the record of the same place that stays",
    description="The duplicate's partnerships move to the survivor (one the survivor already "
    "has with the same sister is not duplicated; one between the two is removed); the stories "
    "linked to it and the subscribers following it follow (`directory.cities_merged`); its "
    "names become the survivor's alternates. The duplicate's id stays a tombstone: "
    "`GET /api/v1/cities/{old}` answers the survivor with `merged_into`, the page "
    "`/cities/{old}` redirects (301), City Search never returns it. 400 to merge a city into "
    "itself, 409 when either was merged already.",
    responses=[400, 404, 409, 503],
)
def merge_city(city_id: int, body: dict):
    return call("directory.merge_cities", city_id, body["into"])
