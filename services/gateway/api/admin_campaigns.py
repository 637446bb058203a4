"""Admin API: "Take Action" announcements (campaigns), through the notifier. Editors write
them, preview them and send a test copy to themselves; only admins send or schedule one (to
every subscriber it concerns, once each, through the digest ledger)."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema, abort
from apiflask.fields import AwareDateTime, Boolean, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from services.gateway.api.admin_auth import ADMIN, EDITOR, admin_auth
from services.gateway.api.admin_schemas import SubscriberQuery
from services.gateway.calls import call
from services.gateway.input_limits import ID, MAX_ID
from services.gateway.web import staff_auth

bp = APIBlueprint("admin_campaigns", __name__, tag="Admin", url_prefix="/api/v1/admin")

STATUSES = ("draft", "scheduled", "sending", "sent")
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 50_000
MAX_AUDIENCE_ITEMS = 100


class Audience(Schema):
    city_ids = List(Integer(strict=True, validate=ID), validate=Length(max=MAX_AUDIENCE_ITEMS))
    country_codes = List(
        String(validate=Regexp(r"^[A-Za-z]{2}$")),
        validate=Length(max=MAX_AUDIENCE_ITEMS),
        metadata={"example": ["FI"]},
    )
    sisters = Boolean(metadata={"description": "Also the followers of their sister cities"})


AUDIENCE_DESCRIPTION = (
    "Who gets it: the confirmed subscribers following any of these cities or any city of "
    "these countries (and, with sisters, of their sister cities); none of either: every "
    "confirmed subscriber"
)


class CampaignIn(Schema):
    subject = String(required=True, validate=Length(min=1, max=MAX_SUBJECT_CHARS))
    body = String(
        required=True,
        validate=Length(min=1, max=MAX_BODY_CHARS),
        metadata={"description": "Markdown; raw HTML is shown as text, images as links"},
    )
    audience = Nested(Audience, load_default=dict, metadata={"description": AUDIENCE_DESCRIPTION})


class CampaignOut(Schema):
    id = Integer(required=True)
    subject = String(required=True)
    body_markdown = String(required=True)
    body_html = String(required=True, metadata={"description": "Rendered and sanitized"})
    body_text = String(required=True)
    audience = Nested(Audience, required=True)
    status = String(required=True, metadata={"description": " / ".join(STATUSES)})
    scheduled_at = String(allow_none=True, metadata={"format": "date-time"})
    sent_at = String(allow_none=True, metadata={"format": "date-time"})
    created_at = String(required=True, metadata={"format": "date-time"})
    updated_at = String(required=True, metadata={"format": "date-time"})
    created_by = String(required=True)
    deliveries = Dict(
        keys=String(),
        values=Integer(),
        required=True,
        metadata={"description": "Its ledger rows by status (claimed, sent, skipped, failed)"},
    )
    audience_size = Integer(metadata={"description": "Subscribers it would go to now"})


class CampaignList(Schema):
    total = Integer(required=True)
    page = Integer(required=True)
    per_page = Integer(required=True)
    campaigns = List(Nested(CampaignOut), required=True)


class CampaignListQuery(Schema):
    status = String(validate=OneOf(STATUSES))
    page = Integer(load_default=1, validate=Range(min=1, max=10_000))


class CampaignPreviewOut(Schema):
    email = String(required=True)
    status = String(required=True)
    in_audience = Boolean(required=True)
    subject = String(required=True)
    html = String(required=True)
    text = String(required=True)
    message = String(required=True, metadata={"description": "The whole MIME message"})


class CampaignTestIn(Schema):
    email = String(
        validate=Length(min=3, max=254),
        metadata={
            "description": "Only with the machine token: a staff session's test goes "
            "to the member's own address"
        },
    )


class CampaignTestOut(Schema):
    status = String(required=True)
    email = String(required=True)


class CampaignSendIn(Schema):
    at = AwareDateTime(
        metadata={"description": "When to send it (with its time zone); none: now"},
    )


def _checked(campaign_id: int) -> int:
    if campaign_id > MAX_ID:
        abort(404, "no such campaign")
    return campaign_id


# Before the list: apispec registers CampaignOut once, from the first route that outputs it
# whole (the list's nested copy would be a second registration).
@bp.post("/campaigns")
@bp.auth_required(admin_auth, roles=EDITOR)
@bp.input(CampaignIn, arg_name="body")
@bp.output(CampaignOut, status_code=201)
@bp.doc(summary="Write a campaign (a draft)", responses=[400, 503])
def create_campaign(body: dict):
    return call("notifier.create_campaign", body["subject"], body["body"], body["audience"])


@bp.get("/campaigns")
@bp.auth_required(admin_auth, roles=EDITOR)
@bp.input(CampaignListQuery, location="query", arg_name="query")
@bp.output(CampaignList)
@bp.doc(summary="Campaigns, newest first, 50 a page, with their deliveries", responses=[400])
def list_campaigns(query: dict):
    return call("notifier.list_campaigns", query.get("status"), query["page"])


@bp.get("/campaigns/<int:campaign_id>")
@bp.auth_required(admin_auth, roles=EDITOR)
@bp.output(CampaignOut)
@bp.doc(summary="A campaign, its deliveries and the size of its audience", responses=[404])
def get_campaign(campaign_id: int):
    return call("notifier.get_campaign", _checked(campaign_id))


@bp.put("/campaigns/<int:campaign_id>")
@bp.auth_required(admin_auth, roles=EDITOR)
@bp.input(CampaignIn, arg_name="body")
@bp.output(CampaignOut)
@bp.doc(
    summary="Change a draft (a scheduled one is put back to draft first)", responses=[400, 404, 409]
)
def update_campaign(campaign_id: int, body: dict):
    return call(
        "notifier.update_campaign",
        _checked(campaign_id),
        body["subject"],
        body["body"],
        body["audience"],
    )


@bp.get("/campaigns/<int:campaign_id>/preview")
@bp.auth_required(admin_auth, roles=EDITOR)
@bp.input(SubscriberQuery, location="query", arg_name="query")
@bp.output(CampaignPreviewOut)
@bp.doc(summary="The campaign as this subscriber would get it, not sent", responses=[400, 404])
def preview_campaign(campaign_id: int, query: dict):
    return call("notifier.preview_campaign", _checked(campaign_id), query["email"])


@bp.post("/campaigns/<int:campaign_id>/test")
@bp.auth_required(admin_auth, roles=EDITOR)
@bp.input(CampaignTestIn, arg_name="body")
@bp.output(CampaignTestOut, status_code=202)
@bp.doc(
    summary="Send a test copy to yourself (not on the ledger)",
    description="A staff session's copy goes to the member's own address; the machine token "
    "names one.",
    responses=[400, 404],
)
def test_campaign(campaign_id: int, body: dict):
    return call("notifier.request_campaign_test", _checked(campaign_id), test_address(body))


def test_address(body: dict) -> str:
    member = staff_auth.signed_in_staff()
    if member is not None and member.staff is not None:
        return member.staff["email"]
    if not body.get("email"):
        abort(400, "the machine token has no address of its own: give email")
    return body["email"]


@bp.post("/campaigns/<int:campaign_id>/send")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(CampaignSendIn, arg_name="body")
@bp.output(CampaignOut, status_code=202)
@bp.doc(
    summary="Send a campaign now, or at a set time (admins only)",
    description="Each subscriber of its audience gets it once, however often this is asked "
    "or a worker is lost mid-send. Sent, it shows on the public Take Action pages.",
    responses=[400, 403, 404, 409],
)
def send_campaign(campaign_id: int, body: dict):
    at = body.get("at")
    return call("notifier.schedule_campaign", _checked(campaign_id), at.isoformat() if at else None)


@bp.post("/campaigns/<int:campaign_id>/unschedule")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(CampaignOut)
@bp.doc(summary="A scheduled campaign back to a draft (admins only)", responses=[404, 409])
def unschedule_campaign(campaign_id: int):
    return call("notifier.unschedule_campaign", _checked(campaign_id))
