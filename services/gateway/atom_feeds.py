"""Atom feeds of the syndicated stories: all of them, or those about one city and its
sisters. Each entry links to the story here and to the original on Medium."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import abort, current_app, render_template

from services.gateway.cached_answers import cached_answer
from services.gateway.clients import settings

bp = APIBlueprint("atom_feeds", __name__, enable_openapi=False)

ENTRIES = 30
ATOM = "application/atom+xml; charset=utf-8"


def _feed(title: str, self_path: str, page_path: str, stories: dict):
    base = settings().public_base_url
    body = render_template(
        "feeds/atom.xml",
        title=title,
        feed_url=base + self_path,
        page_url=base + page_path,
        base=base,
        stories=stories["results"],
    )
    response = current_app.response_class(body, content_type=ATOM)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/feed.xml")
def all_stories():
    params = {"limit": ENTRIES}
    stories = cached_answer("blog", "feed", params, "blog.list_posts", **params)
    return _feed("Sister Cities: stories", "/feed.xml", "/blog", stories)


@bp.get("/cities/<int:city_id>/feed.xml")
def city_stories(city_id: int):
    if city_id > 2**31 - 1:
        abort(404)
    city = cached_answer(
        "directory", "city", {"id": city_id, "sort": "distance"}, "directory.get_city", city_id
    )
    around = [city_id] + [sister["id"] for sister in city["sisters"]]
    params = {"limit": ENTRIES, "city_ids": around}
    stories = cached_answer("blog", "page_stories", params, "blog.list_posts", **params)
    return _feed(
        f"Sister Cities: {city['name']} and its sister cities",
        f"/cities/{city_id}/feed.xml",
        f"/cities/{city_id}",
        stories,
    )
