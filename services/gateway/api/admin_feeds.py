"""Admin API: the feeds the blog syndicates, managed through the blog service's tasks."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, File, Integer, List, Nested, String
from apiflask.validators import Length, OneOf
from flask import current_app

from services.gateway.api.admin_auth import admin_auth
from services.gateway.api.admin_schemas import Deleted, require_cities, uploaded_text
from services.gateway.calls import call
from services.gateway.input_limits import ID

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
    paused_at = String(
        allow_none=True, metadata={**MOMENT, "description": "when staff paused it; null: it runs"}
    )
    post_count = Integer(allow_none=True)
    city_ids = List(
        Integer(),
        required=True,
        metadata={"description": "the cities of the organisation the feed belongs to"},
    )


class FeedsOut(Schema):
    results = List(Nested(FeedOut), required=True)


@bp.post("/feeds")
@bp.auth_required(admin_auth)
@bp.input(FeedIn, arg_name="body")
@bp.output(FeedOut, status_code=201)
@bp.doc(
    summary="Register a feed (fetched at once, then on its own schedule)", responses=[400, 409, 503]
)
def add_feed(body: dict):
    return call("blog.add_feed", body["url"])


@bp.get("/feeds")
@bp.auth_required(admin_auth)
@bp.output(FeedsOut)
@bp.doc(summary="Every feed with its health, next check and post count", responses=[503])
def list_feeds():
    return call("blog.list_feeds")


@bp.post("/feeds/<int:feed_id>/poll")
@bp.auth_required(admin_auth)
@bp.output(FeedOut, status_code=202)
@bp.doc(summary="Fetch a feed now (in the background)", responses=[404, 409, 503])
def poll_feed(feed_id: int):
    return call("blog.request_poll", feed_id)


class PausedIn(Schema):
    paused = Boolean(required=True, truthy={True}, falsy={False}, metadata={"example": True})


@bp.put("/feeds/<int:feed_id>/paused")
@bp.auth_required(admin_auth)
@bp.input(PausedIn, arg_name="body")
@bp.output(FeedOut)
@bp.doc(
    summary="Pause a feed or resume it",
    description="A paused feed is not fetched (nor by poll now: 409) and its WebSub "
    "subscription is ended; resumed, it is fetched at the next hand-out (within a minute).",
    responses=[400, 404, 503],
)
def set_feed_paused(feed_id: int, body: dict):
    return call("blog.set_feed_paused", feed_id, body["paused"])


class FeedCitiesIn(Schema):
    city_ids = List(
        Integer(strict=True, validate=ID),
        required=True,
        validate=Length(max=50),
        metadata={"example": [4644585]},
    )


@bp.put("/feeds/<int:feed_id>/cities")
@bp.auth_required(admin_auth)
@bp.input(FeedCitiesIn, arg_name="body")
@bp.output(FeedOut)
@bp.doc(
    summary="The cities of the organisation a feed belongs to",
    description="Evidence for its stories' city links: a city's partners named in a story of "
    "the Nashville group's feed are Nashville's. Its stories' links are worked out again.",
    responses=[400, 404, 503],
)
def set_feed_cities(feed_id: int, body: dict):
    require_cities(body["city_ids"])
    return call("blog.set_feed_cities", feed_id=feed_id, city_ids=body["city_ids"])


class RemoveFeedIn(Schema):
    stories = String(
        required=True,
        validate=OneOf(("keep", "hide")),
        error_messages={"required": "say what happens to the feed's stories: keep or hide"},
        metadata={
            "description": "keep: its stories stay listed; hide: they are shown nowhere "
            "public (no list, page, Atom feed or story page) and never announced"
        },
    )


class FeedRemoved(Deleted):
    stories_hidden = Integer(required=True)


@bp.delete("/feeds/<int:feed_id>")
@bp.auth_required(admin_auth)
@bp.input(RemoveFeedIn, location="query", arg_name="query")
@bp.output(FeedRemoved)
@bp.doc(summary="Stop syndicating a feed, keeping or hiding its stories", responses=[400, 404, 503])
def remove_feed(feed_id: int, query: dict):
    return call("blog.remove_feed", feed_id, query["stories"])


OPML = "text/x-opml; charset=utf-8"


class OpmlIn(Schema):
    file = File(
        required=True,
        metadata={
            "description": "An OPML file (UTF-8): every outline with an xmlUrl is a "
            "feed, categories flattened; no DTD or entities; at most MAX_BODY_BYTES "
            "(2 MiB by default)"
        },
    )


class RefusedFeed(Schema):
    url = String(required=True)
    reason = String(required=True)


class AddedFeed(Schema):
    id = Integer(required=True)
    url = String(required=True)


class OpmlReport(Schema):
    outlines_read = Integer(required=True)
    added = List(Nested(AddedFeed), required=True)
    already_present = List(String(), required=True)
    refused = List(Nested(RefusedFeed), required=True)


@bp.get("/feeds/opml")
@bp.auth_required(admin_auth)
@bp.doc(
    summary="The feed list as OPML 2.0",
    description="`sistercities blog export-opml`: every feed with its title and site.",
    responses={200: {"description": "OPML 2.0", "content": {"text/x-opml": {}}}, 503: {}},
)
def export_opml():
    document = call("blog.export_opml")["opml"]
    response = current_app.response_class(document, content_type=OPML)
    response.headers["Content-Disposition"] = 'attachment; filename="feeds.opml"'
    return response


@bp.post("/feeds/opml")
@bp.auth_required(admin_auth)
@bp.input(OpmlIn, location="files", arg_name="form")
@bp.output(OpmlReport)
@bp.doc(
    summary="Import feeds from an OPML file",
    description=(
        "The same import as `sistercities blog import-opml FILE`, answered with its report. "
        "Each feed goes through the checks of `POST /api/v1/admin/feeds`; one already "
        "registered is reported as already present, one refused with its reason, and neither "
        "stops the others; sending the file again adds nothing. Added feeds are fetched at "
        "once. A file with a DTD or entities is refused whole."
    ),
    responses=[400, 413, 503],
)
def import_opml(form: dict):
    return call("blog.import_opml", uploaded_text(form["file"]))
