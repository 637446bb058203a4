"""Admin API: the cities a story is linked to, with the evidence for each, and staff's
corrections of them; a story hidden or shown again; through the blog service's tasks."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Integer, List, Nested, String

from services.gateway.api.admin_auth import admin_auth
from services.gateway.api.admin_schemas import require_cities
from services.gateway.calls import call
from services.gateway.input_limits import ID

bp = APIBlueprint("admin_posts", __name__, tag="Admin", url_prefix="/api/v1/admin")


class CityLink(Schema):
    city_id = Integer(required=True)
    source = String(required=True, metadata={"description": "found (by the directory) or staff"})
    evidence = List(
        String(),
        required=True,
        metadata={"example": ["'Belfast' — sister of Nashville, mentioned in the same story"]},
    )


class Correction(Schema):
    city_id = Integer(required=True)
    action = String(required=True, metadata={"description": "add or remove"})
    corrected_at = String(required=True, metadata={"format": "date-time"})


class PostCitiesOut(Schema):
    post_id = Integer(required=True)
    links_current = Boolean(
        required=True,
        metadata={"description": "false while the directory has yet to read the latest text"},
    )
    cities = List(Nested(CityLink), required=True)
    corrections = List(Nested(Correction), required=True)


class CityIn(Schema):
    city_id = Integer(required=True, strict=True, validate=ID, metadata={"example": 2643743})


@bp.get("/posts/<int:post_id>/cities")
@bp.auth_required(admin_auth)
@bp.output(PostCitiesOut)
@bp.doc(
    summary="A story's cities, each with its source and evidence, and staff's corrections",
    responses=[404, 503],
)
def post_cities(post_id: int):
    return call("blog.get_post_cities", post_id)


@bp.post("/posts/<int:post_id>/cities")
@bp.auth_required(admin_auth)
@bp.input(CityIn, arg_name="body")
@bp.output(PostCitiesOut)
@bp.doc(
    summary="Link a story to a city (a staff correction)",
    description="The correction holds whenever the story's links are worked out again (a "
    "re-poll, an edit); the story's page, the city pages and digests follow it.",
    responses=[400, 404, 503],
)
def add_post_city(post_id: int, body: dict):
    require_cities([body["city_id"]])
    return call("blog.correct_post_city", post_id, body["city_id"], "add")


@bp.delete("/posts/<int:post_id>/cities/<int:city_id>")
@bp.auth_required(admin_auth)
@bp.output(PostCitiesOut)
@bp.doc(
    summary="Unlink a story from a city (a staff correction)",
    description="The directory will not link the story to that city again.",
    responses=[400, 404, 503],
)
def remove_post_city(post_id: int, city_id: int):
    return call("blog.correct_post_city", post_id, city_id, "remove")


class HiddenIn(Schema):
    hidden = Boolean(required=True, metadata={"description": "true: hide it; false: show it"})


class StoryOut(Schema):
    id = Integer(required=True)
    title = String(required=True)
    url = String(required=True)
    hidden = Boolean(required=True)


@bp.put("/posts/<int:post_id>/hidden")
@bp.auth_required(admin_auth)
@bp.input(HiddenIn, arg_name="body")
@bp.output(StoryOut)
@bp.doc(
    summary="Hide a story, or show it again",
    description="A hidden story is on no public list, page or feed; one already announced is "
    "withdrawn (`blog.post_hidden`), so no digest still to be sent carries it. Shown again "
    "(`blog.post_shown`), it is listed again and is news for the digests not yet sent when it "
    "was hidden.",
    responses=[400, 404, 503],
)
def set_post_hidden(post_id: int, body: dict):
    return call("blog.set_story_hidden", post_id, body["hidden"])


class FeaturedIn(Schema):
    featured = Boolean(
        required=True, metadata={"description": "true: feature it; false: stop featuring it"}
    )


class FeaturedOut(StoryOut):
    featured = Boolean(required=True)


@bp.put("/posts/<int:post_id>/featured")
@bp.auth_required(admin_auth)
@bp.input(FeaturedIn, arg_name="body")
@bp.output(FeaturedOut)
@bp.doc(
    summary="Feature a story on the home page, or stop featuring it",
    description="One story is featured at a time: featuring one stops featuring the one before. "
    "A hidden story cannot be featured (409). The home page shows it first within seconds.",
    responses=[400, 404, 409, 503],
)
def set_post_featured(post_id: int, body: dict):
    return call("blog.set_story_featured", post_id, body["featured"])
