"""Admin API: the feeds the blog syndicates, managed through the blog service's tasks."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer, List, Nested, String
from apiflask.validators import Length

from services.gateway.admin_auth import admin_auth
from services.gateway.admin_schemas import Deleted
from services.gateway.clients import service_client

bp = APIBlueprint("admin_feeds", __name__, tag="Admin", url_prefix="/api/v1/admin")


# Services answer with ISO 8601 text, passed through as it is.
MOMENT = {"format": "date-time"}


class FeedIn(Schema):
    url = String(
        required=True,
        validate=Length(min=1, max=2000),
        metadata={"example": "https://medium.com/feed/sister-cities-international"},
    )


class FeedOut(Schema):
    id = Integer(required=True)
    url = String(required=True)
    title = String(allow_none=True)
    site_url = String(allow_none=True)
    status = String(required=True, metadata={"description": "pending, ok, not_modified, error"})
    http_status = Integer(allow_none=True)
    error_count = Integer(required=True)
    last_error = String(allow_none=True)
    warning = String(allow_none=True)
    created_at = String(required=True, metadata=MOMENT)
    last_fetched_at = String(allow_none=True, metadata=MOMENT)
    last_success_at = String(allow_none=True, metadata=MOMENT)
    next_check_at = String(required=True, metadata=MOMENT)
    post_count = Integer(allow_none=True)


class FeedsOut(Schema):
    results = List(Nested(FeedOut), required=True)


@bp.post("/feeds")
@bp.auth_required(admin_auth)
@bp.input(FeedIn, arg_name="body")
@bp.output(FeedOut, status_code=201)
@bp.doc(summary="Register a feed (fetched at once, then on its own schedule)",
        responses=[400, 409, 503])  # fmt: skip
def add_feed(body: dict):
    return service_client().call("blog.add_feed", body["url"])


@bp.get("/feeds")
@bp.auth_required(admin_auth)
@bp.output(FeedsOut)
@bp.doc(summary="Every feed with its health, next check and post count", responses=[503])
def list_feeds():
    return service_client().call("blog.list_feeds")


@bp.post("/feeds/<int:feed_id>/poll")
@bp.auth_required(admin_auth)
@bp.output(FeedOut, status_code=202)
@bp.doc(summary="Fetch a feed now (in the background)", responses=[404, 503])
def poll_feed(feed_id: int):
    return service_client().call("blog.request_poll", feed_id)


@bp.delete("/feeds/<int:feed_id>")
@bp.auth_required(admin_auth)
@bp.output(Deleted)
@bp.doc(summary="Stop syndicating a feed (its stories stay)", responses=[404, 503])
def remove_feed(feed_id: int):
    return service_client().call("blog.remove_feed", feed_id)
