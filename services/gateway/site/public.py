"""The public site, what anyone reads: home, City Search, a city's page, the subscribe form,
the stories syndicated from Medium (newest first, by city or tag, each on its own page with
the cities it mentions) and their Atom feeds. Pages show what the services answer; a section
whose service is down says so and the rest still shows."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import abort, current_app, redirect, render_template, request, url_for
from markupsafe import Markup

from services.gateway.calls import call
from services.gateway.clients import settings
from services.gateway.input_limits import CURSOR_CHARS, FREQUENCIES, MAX_ID, TAG_CHARS
from services.gateway.site import subscriber_link
from services.gateway.site.city_names import city_names
from services.gateway.site.subscriptions import added_page
from services.gateway.site.take_action import latest_campaign
from services.gateway.site.world_map import sister_map
from services.gateway.web.page_cache import cached_page
from services.gateway.web.rate_limits import SEARCH, SUBSCRIBE, rate_limited
from services.gateway.web.security import same_origin_form
from shared.errors import ServiceError
from shared.html_allowlist import allowlisted
from shared.search_limits import COUNTRY_CHARS, QUERY_CHARS

bp = APIBlueprint("public", __name__, enable_openapi=False)

# Match kinds that mean "this is the city you typed"; anything else earns a "did you mean".
CLOSE_MATCHES = ("exact", "alternate", "prefix")
STORIES_PAGE_SIZE = 12
FEED_ENTRIES = 30
ATOM = "application/atom+xml; charset=utf-8"


def latest_stories(limit: int, city_ids: list[int] | None = None) -> dict:
    """Stories for a page's side section; None when the blog cannot answer now."""
    try:
        return call("blog.list_posts", cached=True, limit=limit, city_ids=city_ids)
    except ServiceError as error:
        if error.status < 500:
            raise
        return None


def featured_story() -> dict | None:
    """The story staff feature on the home page; None when there is none or the blog cannot
    answer now (the latest stories say so)."""
    try:
        return call("blog.get_featured_post", cached=True)["post"]
    except ServiceError as error:
        if error.status < 500:
            raise
        return None


@bp.get("/")
@cached_page()
def home():
    featured, stories = featured_story(), latest_stories(6)
    if featured and stories:  # shown once, first
        stories = {
            **stories,
            "results": [s for s in stories["results"] if s["id"] != featured["id"]],
        }
    return render_template(
        "pages/home.html",
        featured=featured,
        stories=stories,
        campaign=latest_campaign(),
        donate_url=settings().donate_url,
        frequencies=FREQUENCIES,
    )


@bp.get("/cities")
@rate_limited(SEARCH)
@cached_page(query=("q", "country"))
def search():
    query = request.args.get("q", "").strip()
    country = request.args.get("country", "").strip() or None
    if len(query) > QUERY_CHARS or (country and len(country) > COUNTRY_CHARS):
        return render_template(
            "pages/search.html", query=query[:QUERY_CHARS], error="That search is too long."
        ), 400
    if not query:
        return render_template("pages/search.html", query="", results=[])
    try:
        found = call("directory.search_cities", cached=True, q=query, country=country, limit=20)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return render_template("pages/search.html", query=query, error=error.message), 400
    results = found["results"]
    close = any(result.get("match") in CLOSE_MATCHES for result in results)
    return render_template(
        "pages/search.html",
        query=query,
        country=country,
        results=results,
        did_you_mean=results[0] if results and not close else None,
    )


@bp.get("/cities/<int:city_id>")
@cached_page(query=("sort",))
def city(city_id: int):
    sort = request.args.get("sort", "distance")
    if sort not in ("distance", "year", "name"):
        sort = "distance"
    if city_id > MAX_ID:
        abort(404)
    found = call("directory.get_city", cached=True, city_id=city_id, sort=sort)
    if found.get("merged_into"):  # a record merged into another of the same place
        return _moved_to(found["merged_into"], "public.city")
    try:
        suggestions = call("directory.suggest_sisters", cached=True, city_id=city_id, limit=6)[
            "results"
        ]
    except ServiceError:
        suggestions = None
    around = [city_id] + [sister["id"] for sister in found["sisters"]]
    return render_template(
        "pages/city.html",
        city=found,
        sort=sort,
        map=sister_map(found),
        stories=latest_stories(6, around),
        suggestions=suggestions,
        frequencies=FREQUENCIES,
    )


def _moved_to(survivor: int, endpoint: str):
    """Its survivor's page, for good (301), with the query the page reads."""
    sort = request.args.get("sort")
    return redirect(url_for(endpoint, city_id=survivor, **({"sort": sort} if sort else {})), 301)


@bp.route("/subscribe", methods=["GET", "POST"])
@same_origin_form
@rate_limited(SUBSCRIBE, methods=["POST"])
def subscribe():
    form = {
        "email": request.form.get("email", "")[:320],
        "frequency": request.form.get("frequency", "weekly"),
        "city_ids": request.form.getlist("city_ids"),
    }
    if request.method == "GET":
        return render_template("pages/subscribe.html", form=form, frequencies=FREQUENCIES)
    city_ids = [int(one) for one in form["city_ids"] if one.isdigit() and len(one) < 11]
    if len(city_ids) != len(form["city_ids"]):
        return _subscribe_again(form, "Choose cities from the suggestions.")
    token = subscriber_link.recent_token()
    if token is not None and city_ids:
        answer = call("notifier.follow_now", token, form["email"], city_ids)
        if answer["added"]:
            return added_page(answer)
    try:
        call("notifier.create_subscription", form["email"], form["frequency"], city_ids)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return _subscribe_again(form, error.message)
    # Post/redirect/get: reloading the next page does not subscribe again.
    return redirect(url_for("public.check_inbox"), 303)


def _subscribe_again(form: dict, message: str):
    return render_template(
        "pages/subscribe.html", form=form, frequencies=FREQUENCIES, error=message
    ), 400


@bp.get("/subscribe/check-your-inbox")
def check_inbox():
    return render_template("pages/check_inbox.html")


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
@cached_page(query=("city", "tag", "cursor"))
def stories():
    city_id = _int_arg("city")
    tag = request.args.get("tag", "").strip()[:TAG_CHARS] or None
    cursor = request.args.get("cursor", "").strip()[:CURSOR_CHARS] or None
    params = {"city_id": city_id, "tag": tag, "cursor": cursor, "limit": STORIES_PAGE_SIZE}
    try:
        page = call("blog.list_posts", cached=True, **params)
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
@cached_page()
def story(post_id: int):
    if post_id > MAX_ID:
        abort(404)
    post = call("blog.get_post", cached=True, post_id=post_id)
    cities = city_names(post["city_ids"])
    return render_template(
        "blog/story.html",
        post=post,
        cities=[cities[city_id] for city_id in post["city_ids"] if city_id in cities],
    )


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
    stories = call("blog.list_posts", cached=True, limit=FEED_ENTRIES)
    return _feed("Sister Cities: stories", "/feed.xml", "/blog", stories)


@bp.get("/cities/<int:city_id>/feed.xml")
def city_stories(city_id: int):
    if city_id > MAX_ID:
        abort(404)
    city = call("directory.get_city", cached=True, city_id=city_id, sort="distance")
    if city.get("merged_into"):
        return _moved_to(city["merged_into"], "public.city_stories")
    around = [city_id] + [sister["id"] for sister in city["sisters"]]
    stories = call("blog.list_posts", cached=True, limit=FEED_ENTRIES, city_ids=around)
    return _feed(
        f"Sister Cities: {city['name']} and its sister cities",
        f"/cities/{city_id}/feed.xml",
        f"/cities/{city_id}",
        stories,
    )
