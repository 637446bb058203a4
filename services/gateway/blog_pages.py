"""The blog on the site: stories syndicated from Medium, newest first, by city or tag, and
each story on its own page with the cities it mentions."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import abort, render_template, request
from markupsafe import Markup

from services.gateway.cached_answers import cached_answer
from services.gateway.city_names import city_names
from shared.errors import ServiceError
from shared.html_allowlist import allowlisted

bp = APIBlueprint("blog_pages", __name__, enable_openapi=False)

PAGE_SIZE = 12
MAX_ID = 2**31 - 1


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > MAX_ID or int(raw) < 1:
        abort(400, f"{name} must be a positive whole number")
    return int(raw)


@bp.app_template_filter("allowlisted")
def allowlisted_markup(html: str) -> Markup:
    """The only way a page shows HTML from elsewhere: cleaned to the sanitizer's allowlist
    here, whatever Redis held (a forged cache entry or reply must not carry a script)."""
    return Markup(allowlisted(html))  # noqa: S704 (cleaned to the allowlist)


@bp.get("/blog")
def stories():
    city_id = _int_arg("city")
    tag = request.args.get("tag", "").strip()[:100] or None
    cursor = request.args.get("cursor", "").strip()[:200] or None
    params = {"city_id": city_id, "tag": tag, "cursor": cursor, "limit": PAGE_SIZE}
    try:
        page = cached_answer("blog", "posts", params, "blog.list_posts", **params)
    except ServiceError as error:
        if error.status != 400:
            raise
        # A cursor from a mangled link: start again from the newest.
        abort(400, error.message)
    city = city_names([city_id]).get(city_id) if city_id else None
    return render_template(
        "blog/list.html",
        page=page,
        city_id=city_id,
        city=city,
        tag=tag,
        cursor=cursor,
    )


@bp.get("/blog/<int:post_id>")
def story(post_id: int):
    if post_id > MAX_ID:
        abort(404)
    post = cached_answer("blog", "post", {"id": post_id}, "blog.get_post", post_id)
    cities = city_names(post["city_ids"])
    return render_template(
        "blog/story.html",
        post=post,
        cities=[cities[city_id] for city_id in post["city_ids"] if city_id in cities],
    )
