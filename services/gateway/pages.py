"""The public site: home, City Search, a city's page, and the subscribe form. Pages show what
the services answer; a section whose service is down says so and the rest still shows."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import abort, redirect, render_template, request, url_for

from services.gateway.cached_answers import cached_answer
from services.gateway.clients import service_client, settings
from services.gateway.world_map import sister_map
from shared.errors import ServiceError

bp = APIBlueprint("pages", __name__, enable_openapi=False)

FREQUENCIES = ("weekly", "daily")
MAX_QUERY = 200
# Match kinds that mean "this is the city you typed"; anything else earns a "did you mean".
CLOSE_MATCHES = ("exact", "alternate", "prefix")


def latest_stories(limit: int, city_ids: list[int] | None = None) -> dict:
    """Stories for a page's side section; None when the blog cannot answer now."""
    params = {"limit": limit, "city_ids": city_ids}
    try:
        return cached_answer(
            "blog", "page_stories", params, "blog.list_posts", limit=limit, city_ids=city_ids
        )
    except ServiceError as error:
        if error.status < 500:
            raise
        return None


@bp.get("/")
def home():
    return render_template(
        "pages/home.html",
        stories=latest_stories(6),
        donate_url=settings().donate_url,
        frequencies=FREQUENCIES,
    )


@bp.get("/cities")
def search():
    query = request.args.get("q", "").strip()
    country = request.args.get("country", "").strip() or None
    if len(query) > MAX_QUERY or (country and len(country) > 100):
        return render_template(
            "pages/search.html", query=query[:MAX_QUERY], error="That search is too long."
        ), 400
    if not query:
        return render_template("pages/search.html", query="", results=[])
    params = {"q": query, "country": country, "limit": 20}
    try:
        found = cached_answer(
            "directory", "search", params, "directory.search_cities", query, country, 20
        )
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
def city(city_id: int):
    sort = request.args.get("sort", "distance")
    if sort not in ("distance", "year", "name"):
        sort = "distance"
    if city_id > 2**31 - 1:
        abort(404)
    found = cached_answer(
        "directory", "city", {"id": city_id, "sort": sort}, "directory.get_city", city_id, sort
    )
    try:
        suggestions = cached_answer(
            "directory",
            "suggestions",
            {"id": city_id, "limit": 6},
            "directory.suggest_sisters",
            city_id,
            6,
        )["results"]
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


@bp.route("/subscribe", methods=["GET", "POST"])
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
    try:
        service_client().call(
            "notifier.create_subscription", form["email"], form["frequency"], city_ids
        )
    except ServiceError as error:
        if error.status >= 500:
            raise
        return _subscribe_again(form, error.message)
    # Post/redirect/get: reloading the next page does not subscribe again.
    return redirect(url_for("pages.check_inbox"), 303)


def _subscribe_again(form: dict, message: str):
    return render_template(
        "pages/subscribe.html", form=form, frequencies=FREQUENCIES, error=message
    ), 400


@bp.get("/subscribe/check-your-inbox")
def check_inbox():
    return render_template("pages/check_inbox.html")
