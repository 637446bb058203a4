"""Admin API: subscribers found, seen, sent their confirmation again, unsubscribed, erased on
request and exported as CSV, through the notifier (``subscriber_admin.py``). Admins only:
editors change content, not subscribers."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, Range
from flask import current_app, stream_with_context

from services.gateway.api.admin_auth import ADMIN, admin_auth
from services.gateway.calls import call
from services.gateway.input_limits import ID

bp = APIBlueprint("admin_subscribers", __name__, tag="Subscribers", url_prefix="/api/v1/admin")

MOMENT = {"format": "date-time"}
MAX_PAGE = 100
STATES = "pending, confirmed, unsubscribed, bounced, complained, or erased"


class SubscribersQuery(Schema):
    q = String(
        load_default=None,
        validate=Length(max=254),
        metadata={"description": "The start of the address, in any case", "example": "ada@"},
    )
    before = Integer(
        load_default=None,
        validate=ID,
        metadata={"description": "The previous page's next_before_id"},
    )
    limit = Integer(load_default=50, validate=Range(min=1, max=MAX_PAGE))


class SubscriberSummary(Schema):
    id = Integer(required=True)
    email = String(allow_none=True, required=True, metadata={"description": "null once erased"})
    status = String(required=True, metadata={"description": STATES})
    frequency = String(required=True, metadata={"description": "weekly or daily"})
    city_count = Integer(required=True, metadata={"description": "0: follows all the news"})
    created_at = String(required=True, metadata=MOMENT)
    confirmed_at = String(allow_none=True, required=True, metadata=MOMENT)


class SubscribersPage(Schema):
    results = List(Nested(SubscriberSummary), required=True)
    next_before_id = Integer(
        allow_none=True, required=True, metadata={"description": "null on the last page"}
    )


class FollowedCity(Schema):
    id = Integer(required=True)
    name = String(allow_none=True, required=True)


class BounceCounts(Schema):
    hard = Integer(required=True)
    soft = Integer(required=True)
    complaint = Integer(required=True)


class BounceOut(Schema):
    kind = String(required=True, metadata={"description": "hard, soft or complaint"})
    message = String(required=True, metadata={"example": "digest:123"})
    reason = String(required=True)
    received_at = String(required=True, metadata=MOMENT)


class SubscriberOut(SubscriberSummary):
    cities = List(Nested(FollowedCity), required=True)
    unsubscribed_at = String(allow_none=True, required=True, metadata=MOMENT)
    confirmation_sent_at = String(allow_none=True, required=True, metadata=MOMENT)
    confirmations = Integer(required=True, metadata={"description": "Confirmation mails sent"})
    soft_failures = Integer(required=True)
    digests_sent = Integer(required=True)
    last_digest_at = String(allow_none=True, required=True, metadata=MOMENT)
    bounces = Nested(BounceCounts, required=True)
    recent_bounces = List(Nested(BounceOut), required=True)


class Erased(Schema):
    id = Integer(required=True)
    erased = Boolean(required=True)


@bp.get("/subscribers")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(SubscribersQuery, location="query", arg_name="query")
@bp.output(SubscribersPage)
@bp.doc(
    summary="Find subscribers by the start of their address, newest first, a page at a time",
    responses=[400, 503],
)
def list_subscribers(query: dict):
    return call(
        "notifier.find_subscribers", q=query["q"], before_id=query["before"], limit=query["limit"]
    )


# Before /subscribers/<id>: the export's path is not an id.
@bp.get("/subscribers.csv")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.doc(
    summary="Every subscriber as CSV (erased ones left out), streamed",
    description="Columns: id, email, status, frequency, cities (names, `; ` between), "
    "created_at, confirmed_at, unsubscribed_at, digests_sent, last_digest_at. A cell that a "
    "spreadsheet would read as a formula (starting with = + - @, a tab or a carriage "
    "return) starts with a single quote (OWASP's CSV injection advice).",
    responses={200: {"description": "CSV", "content": {"text/csv": {}}}, 503: {}},
)
def export_subscribers():
    first = call("notifier.export_subscribers")  # before the 200: a service down is a 503

    @stream_with_context
    def pages():
        page = first
        yield page["csv"]
        while page["next_after_id"] is not None:
            page = call("notifier.export_subscribers", page["next_after_id"])
            yield page["csv"]

    response = current_app.response_class(pages(), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
    return response


@bp.get("/subscribers/<int:subscriber_id>")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(SubscriberOut)
@bp.doc(
    summary="A subscriber: state, cities followed, dates, digests sent, bounces",
    description="Their history is `GET /api/v1/admin/audit?kind=subscriber&id=ID`.",
    responses=[404, 503],
)
def get_subscriber(subscriber_id: int):
    return call("notifier.get_subscriber", subscriber_id)


@bp.post("/subscribers/<int:subscriber_id>/resend-confirmation")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(SubscriberOut)
@bp.doc(
    summary="Send a pending subscriber's confirmation again (a new link: only it confirms)",
    responses=[404, 409, 503],
)
def resend_confirmation(subscriber_id: int):
    return call("notifier.resend_confirmation", subscriber_id)


@bp.post("/subscribers/<int:subscriber_id>/unsubscribe")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(SubscriberOut)
@bp.doc(summary="Unsubscribe a subscriber (no more mail)", responses=[404, 409, 503])
def unsubscribe(subscriber_id: int):
    return call("notifier.unsubscribe_subscriber", subscriber_id)


@bp.delete("/subscribers/<int:subscriber_id>")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(Erased)
@bp.doc(
    summary="Erase a subscriber on request: the address goes, the counts stay",
    description="The address leaves the notifier's database: the subscriber's row stays as a "
    "tombstone (status erased, no address, no cities) so digests and bounces still count; "
    "the address is taken out of delivery errors, bounce reasons, the audit log and the "
    "outbox. Erasing twice answers the same.",
    responses=[404, 503],
)
def erase(subscriber_id: int):
    return call("notifier.erase_subscriber", subscriber_id)
