"""Admin API: digests previewed and sent now, and subscriber counts, through the notifier."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Integer, Nested, String
from apiflask.validators import Length, OneOf

from services.gateway.admin_auth import admin_auth
from services.gateway.clients import service_client

bp = APIBlueprint("admin_digests", __name__, tag="Admin", url_prefix="/api/v1/admin")


class PreviewQuery(Schema):
    email = String(required=True, validate=Length(min=3, max=254))


class PreviewOut(Schema):
    email = String(required=True)
    status = String(required=True)
    stories = Integer(required=True)
    subject = String(required=True)
    message = String(required=True, metadata={"description": "The whole MIME message"})


class SendIn(Schema):
    frequency = String(required=True, validate=OneOf(("weekly", "daily")))


class SendOut(Schema):
    status = String(required=True)
    frequency = String(required=True)


class DigestRun(Schema):
    period = String(required=True, metadata={"example": "weekly:2026-W48"})
    started_at = String(
        required=True,
        metadata={"format": "date-time", "description": "When its first delivery was claimed"},
    )
    last_sent_at = String(allow_none=True, metadata={"format": "date-time"})
    deliveries = Dict(
        keys=String(),
        values=Integer(),
        required=True,
        metadata={"description": "The period's deliveries by status"},
    )


class StatsOut(Schema):
    total = Integer(required=True)
    by_status = Dict(keys=String(), values=Integer(), required=True)
    confirmed_by_frequency = Dict(keys=String(), values=Integer(), required=True)
    deliveries = Dict(keys=String(), values=Integer(), required=True)
    last_digest_sent_at = String(allow_none=True, metadata={"format": "date-time"})
    last_digest_run = Nested(
        DigestRun, allow_none=True, metadata={"description": "The newest digest period, if any"}
    )
    sent_not_acknowledged = Integer(
        required=True,
        metadata={"description": "Marked sent without the server's acceptance recorded: in "
                  "flight, or lost by a crash at the last line (see the README)"},
    )  # fmt: skip


@bp.get("/digests/preview")
@bp.auth_required(admin_auth)
@bp.input(PreviewQuery, location="query", arg_name="query")
@bp.output(PreviewOut)
@bp.doc(summary="The digest a subscriber would get now, rendered, not sent",
        responses=[400, 404, 503])  # fmt: skip
def preview(query: dict):
    return service_client().call("notifier.preview_digest", query["email"])


@bp.post("/digests/send")
@bp.auth_required(admin_auth)
@bp.input(SendIn, arg_name="body")
@bp.output(SendOut, status_code=202)
@bp.doc(summary="Send this frequency's digests now (still one per subscriber and period)",
        responses=[400, 503])  # fmt: skip
def send(body: dict):
    return service_client().call("notifier.request_digests", body["frequency"])


@bp.get("/subscribers/stats")
@bp.auth_required(admin_auth)
@bp.output(StatsOut)
@bp.doc(summary="Subscribers by status and frequency; deliveries by status; the last digest run",
        responses=[503])  # fmt: skip
def stats():
    return service_client().call("notifier.subscriber_stats")
