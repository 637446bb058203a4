"""Admin API: partnerships, changed through the directory service's tasks."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer, List, String
from apiflask.validators import Length, OneOf, Range

from services.gateway.admin_auth import admin_auth
from services.gateway.admin_schemas import Deleted
from services.gateway.clients import service_client

bp = APIBlueprint("admin_partnerships", __name__, tag="Admin", url_prefix="/api/v1/admin")

STATUSES = ("active", "inactive", "proposed")
ID = Range(min=1, max=2**31 - 1)
YEAR = Range(min=800, max=2100)


class PartnershipIn(Schema):
    city_id = Integer(required=True, strict=True, validate=ID)
    sister_city_id = Integer(required=True, strict=True, validate=ID)
    since = Integer(load_default=None, allow_none=True, strict=True, validate=YEAR)
    status = String(load_default="active", validate=OneOf(STATUSES))
    source = String(load_default=None, allow_none=True, validate=Length(max=200))
    notes = String(load_default=None, allow_none=True, validate=Length(max=5000))


class PartnershipPatch(Schema):
    since = Integer(allow_none=True, strict=True, validate=YEAR)
    status = String(validate=OneOf(STATUSES))
    source = String(allow_none=True, validate=Length(max=200))
    notes = String(allow_none=True, validate=Length(max=5000))


class PartnershipOut(Schema):
    id = Integer(required=True)
    city_ids = List(Integer(), required=True)
    since = Integer(allow_none=True)
    status = String(required=True)
    source = String(allow_none=True)
    notes = String(allow_none=True)


PARTNERSHIP_ID = {"partnership_id": {"description": "The partnership's id"}}


@bp.post("/partnerships")
@bp.auth_required(admin_auth)
@bp.input(PartnershipIn, arg_name="body")
@bp.output(PartnershipOut, status_code=201)
@bp.doc(summary="Add a partnership between two directory cities", responses=[400, 404, 409, 503])
def create_partnership(body: dict):
    return service_client().call("directory.create_partnership", **body)


@bp.patch("/partnerships/<int:partnership_id>")
@bp.auth_required(admin_auth)
@bp.input(PartnershipPatch, arg_name="body")
@bp.output(PartnershipOut)
@bp.doc(summary="Change a partnership's year, status, source or notes", responses=[400, 404, 503])
def update_partnership(partnership_id: int, body: dict):
    return service_client().call("directory.update_partnership", partnership_id, body)


@bp.delete("/partnerships/<int:partnership_id>")
@bp.auth_required(admin_auth)
@bp.output(Deleted)
@bp.doc(summary="Remove a partnership", responses=[404, 503])
def delete_partnership(partnership_id: int):
    return service_client().call("directory.delete_partnership", partnership_id)
