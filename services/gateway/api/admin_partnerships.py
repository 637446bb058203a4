"""Admin API: partnerships, changed through the directory service's tasks."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from services.gateway.api.admin_auth import admin_auth
from services.gateway.api.admin_schemas import Deleted, uploaded_text
from services.gateway.calls import call
from services.gateway.clients import LONG_CALL_TIMEOUT
from services.gateway.input_limits import ID

bp = APIBlueprint("admin_partnerships", __name__, tag="Admin", url_prefix="/api/v1/admin")

STATUSES = ("active", "inactive", "proposed")
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


class ImportIn(Schema):
    file = File(
        required=True,
        metadata={
            "description": "UTF-8 CSV: twin_cities.csv's columns (city1,country1,lat1,"
            "lng1,city2,country2,lat2,lng2) or the native ones (city_a,country_a,city_b,"
            "country_b,since,status,source,notes,lat_a,lng_a,lat_b,lng_b); at most "
            "MAX_BODY_BYTES (2 MiB by default) in all"
        },
    )


class RejectedRow(Schema):
    line = Integer(required=True, metadata={"description": "The row's line in the file"})
    reason = String(required=True)


class ImportReport(Schema):
    rows_read = Integer(required=True)
    partnerships_created = Integer(required=True)
    partnerships_already_present = Integer(required=True)
    cities_matched = Integer(required=True, metadata={"description": "City sides matched"})
    cities_created = Integer(required=True)
    rejected = List(Nested(RejectedRow), required=True)


PARTNERSHIP_ID = {"partnership_id": {"description": "The partnership's id"}}


@bp.post("/partnerships")
@bp.auth_required(admin_auth)
@bp.input(PartnershipIn, arg_name="body")
@bp.output(PartnershipOut, status_code=201)
@bp.doc(summary="Add a partnership between two directory cities", responses=[400, 404, 409, 503])
def create_partnership(body: dict):
    return call("directory.create_partnership", **body)


@bp.patch("/partnerships/<int:partnership_id>")
@bp.auth_required(admin_auth)
@bp.input(PartnershipPatch, arg_name="body")
@bp.output(PartnershipOut)
@bp.doc(summary="Change a partnership's year, status, source or notes", responses=[400, 404, 503])
def update_partnership(partnership_id: int, body: dict):
    return call("directory.update_partnership", partnership_id, body)


@bp.delete("/partnerships/<int:partnership_id>")
@bp.auth_required(admin_auth)
@bp.output(Deleted)
@bp.doc(summary="Remove a partnership", responses=[404, 503])
def delete_partnership(partnership_id: int):
    return call("directory.delete_partnership", partnership_id)


@bp.post("/partnerships/import")
@bp.auth_required(admin_auth)
@bp.input(ImportIn, location="files", arg_name="form")
@bp.output(ImportReport)
@bp.doc(
    summary="Import partnerships from a CSV file",
    description=(
        "The same import as `sistercities directory import-partnerships FILE`, answered "
        "with its report. Each side of a row is matched to a directory city (or created "
        "from its coordinates); a partnership already present is left as it is, so sending "
        "a file again changes nothing; bad rows are reported with their line number and "
        "never stop the import. New partnerships are committed in batches and announced "
        "as `directory.partnership_changed`. This call may take up to "
        f"{LONG_CALL_TIMEOUT:g} s (a 2 MiB file, up to a minute and a half). One import runs "
        "at a time: while another is under way the answer is 409. After a 503 for a timeout, "
        "an import the directory had begun still finishes; sending the file again once it "
        "has is safe and reports what is there."
    ),
    responses=[400, 409, 413, 503],
)
def import_partnerships(form: dict):
    upload = form["file"]
    return call(
        "directory.import_partnerships",
        uploaded_text(upload),
        upload.filename or "upload",
        long=True,
    )
