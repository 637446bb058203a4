"""Admin API: digests previewed and sent now, those sent and never acknowledged listed and
re-sent, and subscriber counts, through the notifier."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Integer, List, Nested, String
from apiflask.validators import OneOf, Regexp

from services.gateway.api.admin_auth import ADMIN, admin_auth
from services.gateway.api.admin_schemas import SubscriberQuery
from services.gateway.calls import call
from services.gateway.clients import LONG_CALL_TIMEOUT
from services.gateway.input_limits import FREQUENCIES

bp = APIBlueprint("admin_digests", __name__, tag="Admin", url_prefix="/api/v1/admin")


class PreviewOut(Schema):
    email = String(required=True)
    status = String(required=True)
    stories = Integer(required=True)
    subject = String(required=True)
    message = String(required=True, metadata={"description": "The whole MIME message"})


class SendIn(Schema):
    frequency = String(required=True, validate=OneOf(FREQUENCIES))


class SendOut(Schema):
    status = String(required=True)
    frequency = String(required=True)


PERIOD = Regexp(r"^(daily:\d{4}-\d{2}-\d{2}|weekly:\d{4}-W\d{2})$")
PERIOD_EXAMPLE = {"example": "weekly:2026-W48"}


class UnconfirmedQuery(Schema):
    period = String(validate=PERIOD, metadata=PERIOD_EXAMPLE)


class UnconfirmedDelivery(Schema):
    id = Integer(required=True)
    subscriber_id = Integer(required=True)
    message_id = String(required=True, metadata={"description": "The digest's Message-ID"})
    sent_at = String(required=True, metadata={"format": "date-time"})


class UnconfirmedPeriod(Schema):
    period = String(required=True, metadata=PERIOD_EXAMPLE)
    count = Integer(required=True)
    deliveries = List(Nested(UnconfirmedDelivery), required=True)


class UnconfirmedOut(Schema):
    total = Integer(required=True)
    settling_minutes = Integer(
        required=True,
        metadata={"description": "Rows marked more recently are left out: a send under way"},
    )
    periods = List(Nested(UnconfirmedPeriod), required=True)


class ResendIn(Schema):
    period = String(required=True, validate=PERIOD, metadata=PERIOD_EXAMPLE)


class ResendOut(Schema):
    period = String(required=True)
    resent = Integer(required=True)
    skipped = Integer(
        required=True,
        metadata={
            "description": (
                "Re-sent by another call at the same moment, the subscriber "
                "no longer confirmed, or every story of the digest withdrawn since"
            )
        },
    )
    failed = Integer(
        required=True,
        metadata={
            "description": (
                "Refused by the mail server: for good (the address "
                "bounces) or for now (left to re-send again)"
            )
        },
    )


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
        metadata={
            "description": (
                "Marked sent without the server's acceptance recorded: in "
                "flight, or lost by a crash at the last line (see the README)"
            )
        },
    )


@bp.get("/digests/preview")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(SubscriberQuery, location="query", arg_name="query")
@bp.output(PreviewOut)
@bp.doc(
    summary="The digest a subscriber would get now, rendered, not sent", responses=[400, 404, 503]
)
def preview(query: dict):
    return call("notifier.preview_digest", query["email"])


@bp.post("/digests/send")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(SendIn, arg_name="body")
@bp.output(SendOut, status_code=202)
@bp.doc(
    summary="Send this frequency's digests now (still one per subscriber and period)",
    responses=[400, 503],
)
def send(body: dict):
    return call("notifier.request_digests", body["frequency"])


@bp.get("/digests/unconfirmed")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(UnconfirmedQuery, location="query", arg_name="query")
@bp.output(UnconfirmedOut)
@bp.doc(
    summary="Digests sent, not acknowledged: what a crash may have lost, by period",
    description=(
        "Digests the ledger marked sent whose acceptance by the mail server (its 250) was "
        "never recorded, and not re-sent yet: a worker killed between a message's mark and "
        "its last line lost it, or was killed after the server took it and before the 250 "
        "was recorded (the likelier case). Rows marked in the last few minutes are left out: "
        "a send under way records its 250s within seconds. Nothing is re-sent on its own: "
        "see `POST /api/v1/admin/digests/resend-unconfirmed`."
    ),
    responses=[400, 503],
)
def unconfirmed(query: dict):
    return call("notifier.list_unconfirmed_digests", query.get("period"))


@bp.post("/digests/resend-unconfirmed")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(ResendIn, arg_name="body")
@bp.output(ResendOut)
@bp.doc(
    summary="Send a period's digests sent, not acknowledged, again, with their Message-IDs",
    description=(
        "The same as `sistercities notifier digests resend-unconfirmed --period P`: each "
        "digest the unconfirmed list holds for the period goes out again with its original "
        "Message-ID (receiving mailboxes drop a copy of a message they already hold) and "
        "the same stories (the digest is cut again at the moment it was first sent). Each "
        "is re-sent once at most, however often or by how many this is called at once; a "
        "re-send the server accepts is recorded as acknowledged. This call may take up to "
        f"{LONG_CALL_TIMEOUT:g} s; after a 503 the re-send still finishes, and calling again "
        "sends only what is left."
    ),
    responses=[400, 503],
)
def resend_unconfirmed(body: dict):
    return call("notifier.resend_unconfirmed_digests", body["period"], long=True)


@bp.get("/subscribers/stats")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(StatsOut)
@bp.doc(
    summary="Subscribers by status and frequency; deliveries by status; the last digest run",
    responses=[503],
)
def stats():
    return call("notifier.subscriber_stats")
