"""The staff workspace: partnerships, stories, feeds, subscribers, staff members and the audit
log, as pages.

Server-rendered forms that work without JavaScript (``site.js`` adds city suggestions as you
type); every form carries its CSRF token (``web/security.py``); every list is a page at a
time. Each page acts as the member signed in (``web/staff_auth.py``), so what it asks of a
service is on that service's audit log under their name. Editors change content; the staff
and subscriber pages are for admins.

A city is given by name: a suggestion chosen in the browser sends its id; a name typed
without one is looked up in the directory's search, and taken when one city has that name,
or offered as a choice (with region and country) when several have."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import abort, current_app, redirect, render_template, request, url_for

from services.gateway.audit_history import merged_history
from services.gateway.calls import call
from services.gateway.input_limits import CURSOR_CHARS, MAX_ID
from services.gateway.site.city_names import city_names
from services.gateway.web import staff_auth
from services.gateway.web.security import never_stored
from shared.errors import ServiceError
from shared.search_limits import QUERY_CHARS

bp = APIBlueprint("workspace", __name__, url_prefix="/staff", enable_openapi=False)

ADMINS = ("admin",)
STATUSES = ("active", "inactive", "proposed")
ROLES = ("editor", "admin")
PARTNERSHIPS_PAGE = 50
STORIES_PAGE = 25
FEEDS_PAGE = 25
SUBSCRIBERS_PAGE = 50
MAX_ADDRESS_CHARS = 254
MAX_URL_CHARS = 2000
AUDIT_PAGE = 50
CANDIDATES = 6
# Directory search matches that mean "a city of exactly this name".
SAME_NAME = ("exact", "alternate")
MAX_SOURCE_CHARS = 200
MAX_NOTES_CHARS = 5000


bp.after_request(never_stored)


def _whole_number(text: str | None, low: int = 1, high: int = MAX_ID) -> int | None:
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if low <= number <= high else None


def asked(task: str, *args, **params) -> tuple[dict | None, str | None]:
    """A change a form asked for: the service's answer, or why it refused (said on the
    form's page again); a service that does not answer is the site's error page."""
    try:
        return call(task, *args, **params), None
    except ServiceError as failure:
        if failure.status >= 500:
            raise
        return None, failure.message


def _with_history(task: str, kind: str, object_id: int) -> tuple[dict, dict]:
    """An object a page edits, as its service answers for it, and its history."""
    if object_id > MAX_ID:
        abort(404)
    return call(task, object_id), merged_history(kind, str(object_id), None, AUDIT_PAGE)


# --- cities by name ----------------------------------------------------------------------


def resolve_city(name: str, chosen_id: str | None) -> tuple[int | None, list[dict]]:
    """The city meant by a form's field: its id, or None and the candidates to choose from
    (none: no city of that name)."""
    city_id = _whole_number(chosen_id)
    if city_id is not None:
        return city_id, []
    name = name.strip()[:QUERY_CHARS]
    if not name:
        return None, []
    found = call("directory.search_cities", cached=True, q=name, country=None, limit=CANDIDATES)
    results = found["results"]
    same = [city for city in results if city.get("match") in SAME_NAME]
    if len(same) == 1:
        return same[0]["id"], []
    return None, same or results


# --- partnerships ------------------------------------------------------------------------


@bp.get("/partnerships")
@staff_auth.staff_page()
def partnerships(principal):
    return _partnerships_page(principal)


def _partnerships_page(principal, status: int = 200, **form_state):
    city_id = _whole_number(request.args.get("city"))
    before_id = _whole_number(request.args.get("before"))
    page = call(
        "directory.list_partnerships",
        city_id=city_id,
        before_id=before_id,
        limit=PARTNERSHIPS_PAGE,
    )
    return render_template(
        "staff/partnerships.html",
        staff=principal.staff,
        page=page,
        city_id=city_id,
        statuses=STATUSES,
        form=form_state.get("form", {}),
        choices=form_state.get("choices", {}),
        error=form_state.get("error"),
        added=request.args.get("added"),
    ), status


@bp.post("/partnerships")
@staff_auth.staff_page()
def add_partnership(principal):
    form = {
        field: request.form.get(field, "")[:MAX_NOTES_CHARS]
        for field in ("city", "city_id", "sister", "sister_id", "since", "status", "source")
    }
    form["notes"] = request.form.get("notes", "")[:MAX_NOTES_CHARS]
    ids, choices, missing = {}, {}, []
    for field, label in (("city", "the first city"), ("sister", "the sister city")):
        city_id, candidates = resolve_city(form[field], form[f"{field}_id"])
        if city_id is not None:
            ids[field] = city_id
        elif candidates:
            choices[field] = candidates
        else:
            missing.append(label)
    error = None
    if missing:
        error = "No city is called that: check " + " and ".join(missing) + "."
    elif choices:
        error = "Several cities have that name: choose one."
    since = None
    if not error and form["since"].strip():
        since = _whole_number(form["since"], 800, 2100)
        if since is None:
            error = "The year is a year, such as 1961."
    if error:
        return _partnerships_page(principal, 400, form=form, choices=choices, error=error)
    made, refused = asked(
        "directory.create_partnership",
        city_id=ids["city"],
        sister_city_id=ids["sister"],
        since=since,
        status=form["status"] if form["status"] in STATUSES else "active",
        source=form["source"].strip()[:MAX_SOURCE_CHARS] or None,
        notes=form["notes"].strip() or None,
    )
    if refused:
        return _partnerships_page(principal, 400, form=form, error=refused)
    return redirect(url_for(".partnerships", added=made["id"]), 303)


@bp.get("/partnerships/<int:partnership_id>")
@staff_auth.staff_page()
def partnership(principal, partnership_id: int):
    return _partnership_page(principal, partnership_id)


def _partnership_page(principal, partnership_id: int, status: int = 200, error=None):
    found, history = _with_history("directory.get_partnership", "partnership", partnership_id)
    return render_template(
        "staff/partnership.html",
        staff=principal.staff,
        partnership=found,
        statuses=STATUSES,
        history=history,
        error=error,
        saved=request.args.get("saved"),
    ), status


@bp.post("/partnerships/<int:partnership_id>")
@staff_auth.staff_page()
def edit_partnership(principal, partnership_id: int):
    since_text = request.form.get("since", "").strip()
    since = _whole_number(since_text, 800, 2100) if since_text else None
    status = request.form.get("status", "")
    if (since_text and since is None) or status not in STATUSES:
        error = "The year is a year, such as 1961, and the status one of the three."
        return _partnership_page(principal, partnership_id, 400, error)
    changes = {
        "since": since,
        "status": status,
        "source": request.form.get("source", "").strip()[:MAX_SOURCE_CHARS] or None,
        "notes": request.form.get("notes", "").strip()[:MAX_NOTES_CHARS] or None,
    }
    _answer, refused = asked("directory.update_partnership", partnership_id, changes)
    if refused:  # a partnership removed meanwhile: its page is a 404
        return _partnership_page(principal, partnership_id, 400, refused)
    return redirect(url_for(".partnership", partnership_id=partnership_id, saved=1), 303)


@bp.post("/partnerships/<int:partnership_id>/end")
@staff_auth.staff_page()
def end_partnership(principal, partnership_id: int):
    call("directory.update_partnership", partnership_id, {"status": "inactive"})
    return redirect(url_for(".partnership", partnership_id=partnership_id, saved=1), 303)


@bp.post("/partnerships/<int:partnership_id>/remove")
@staff_auth.staff_page()
def remove_partnership(principal, partnership_id: int):
    call("directory.delete_partnership", partnership_id)
    return redirect(url_for(".partnerships"), 303)


# --- cities ------------------------------------------------------------------------------


@bp.get("/cities/<int:city_id>")
@staff_auth.staff_page()
def city(principal, city_id: int):
    return _city_page(principal, city_id)


def _city_page(principal, city_id: int, status: int = 200, **form_state):
    found, history = _with_history("directory.get_city_record", "city", city_id)
    return render_template(
        "staff/city.html",
        staff=principal.staff,
        city=found,
        form=form_state.get("form") or _city_form(found),
        error=form_state.get("error"),
        merge_error=form_state.get("merge_error"),
        typed=form_state.get("typed", ""),
        choices=form_state.get("choices", []),
        merged=_whole_number(request.args.get("merged")),
        history=history,
        saved=request.args.get("saved"),
    ), status


@bp.post("/cities/<int:city_id>/merge")
@staff_auth.staff_page()
def merge_city(principal, city_id: int):
    """Merge this record into the survivor typed by name (it stays a tombstone)."""
    typed = request.form.get("into", "")[:QUERY_CHARS]
    into, candidates = resolve_city(typed, request.form.get("into_id"))
    candidates = [city for city in candidates if city["id"] != city_id]
    if into is None:
        error = (
            "Several cities have that name: choose one."
            if candidates
            else "No city is called that."
        )
        return _city_page(
            principal, city_id, 400, merge_error=error, typed=typed, choices=candidates
        )
    _answer, refused = asked("directory.merge_cities", city_id, into)
    if refused:
        return _city_page(principal, city_id, 400, merge_error=refused, typed=typed)
    return redirect(url_for(".city", city_id=into, merged=city_id), 303)


def _city_form(city: dict) -> dict:
    """The edit form's fields as text, from the city as the directory has it."""
    return {
        "name": city["name"],
        "alternate_names": "\n".join(city["alternate_names"]),
        "region": city["region"] or "",
        "population": str(city["population"]),
        "latitude": repr(city["latitude"]),
        "longitude": repr(city["longitude"]),
    }


@bp.post("/cities/<int:city_id>")
@staff_auth.staff_page()
def edit_city(principal, city_id: int):
    form = {
        field: request.form.get(field, "")[:MAX_NOTES_CHARS]
        for field in ("name", "alternate_names", "region", "population", "latitude", "longitude")
    }
    changes, error = _city_changes(form)
    if error:
        return _city_page(principal, city_id, 400, form=form, error=error)
    _answer, refused = asked("directory.update_city", city_id, changes)
    if refused:
        return _city_page(principal, city_id, 400, form=form, error=refused)
    return redirect(url_for(".city", city_id=city_id, saved=1), 303)


def _city_changes(form: dict) -> tuple[dict, str | None]:
    """The form's fields as the directory takes them, or what is wrong with them."""
    population = _whole_number(form["population"], 0, MAX_ID)
    if population is None:
        return {}, "The population is a whole number, 0 or more."
    coordinates = {}
    for field, limit in (("latitude", 90), ("longitude", 180)):
        try:
            value = float(form[field].strip().replace(",", "."))
        except ValueError:
            value = None
        if value is None or not -limit <= value <= limit:
            return {}, f"The {field} is a number from -{limit} to {limit}, such as 44.98."
        coordinates[field] = value
    alternates = [line.strip() for line in form["alternate_names"].splitlines() if line.strip()]
    changes = {
        "name": form["name"].strip(),
        "alternate_names": alternates,
        "region": form["region"].strip() or None,
        "population": population,
        **coordinates,
    }
    return changes, None


# --- stories -----------------------------------------------------------------------------


@bp.get("/stories")
@staff_auth.staff_page()
def stories(principal):
    cursor = request.args.get("cursor", "")[:CURSOR_CHARS] or None
    page = call("blog.list_stories_for_staff", cursor=cursor, limit=STORIES_PAGE)
    return render_template("staff/stories.html", staff=principal.staff, page=page)


@bp.post("/stories/<int:post_id>/visibility")
@staff_auth.staff_page()
def story_visibility(principal, post_id: int):
    hidden = request.form.get("hidden") == "1"
    call("blog.set_story_hidden", post_id, hidden)
    if request.form.get("back") == "story":
        return redirect(url_for(".story", post_id=post_id), 303)
    return redirect(url_for(".stories"), 303)


@bp.post("/stories/<int:post_id>/featured")
@staff_auth.staff_page()
def story_featured(principal, post_id: int):
    """Feature the story on the home page (the one featured before is not any more), or stop."""
    _answer, refused = asked(
        "blog.set_story_featured", post_id, request.form.get("featured") == "1"
    )
    if refused:  # a hidden story
        return _story_page(principal, post_id, 409, refused)
    return redirect(url_for(".story", post_id=post_id), 303)


@bp.get("/stories/<int:post_id>")
@staff_auth.staff_page()
def story(principal, post_id: int):
    return _story_page(principal, post_id)


def _story_page(principal, post_id: int, status: int = 200, error=None, typed="", choices=()):
    if post_id > MAX_ID:
        abort(404)
    links = call("blog.get_post_cities", post_id)
    names = city_names([link["city_id"] for link in links["cities"]])
    history = merged_history("story", str(post_id), None, AUDIT_PAGE)
    return render_template(
        "staff/story.html",
        staff=principal.staff,
        post_id=post_id,
        links=links,
        names=names,
        history=history,
        error=error,
        typed=typed,
        choices=choices,
    ), status


@bp.post("/stories/<int:post_id>/cities")
@staff_auth.staff_page()
def add_story_city(principal, post_id: int):
    typed = request.form.get("city", "")[:QUERY_CHARS]
    city_id, candidates = resolve_city(typed, request.form.get("city_id"))
    if city_id is None:
        error = (
            "Several cities have that name: choose one."
            if candidates
            else ("No city is called that.")
        )
        return _story_page(principal, post_id, 400, error, typed, candidates)
    call("blog.correct_post_city", post_id, city_id, "add")
    return redirect(url_for(".story", post_id=post_id), 303)


@bp.post("/stories/<int:post_id>/cities/<int:city_id>/remove")
@staff_auth.staff_page()
def remove_story_city(principal, post_id: int, city_id: int):
    call("blog.correct_post_city", post_id, city_id, "remove")
    return redirect(url_for(".story", post_id=post_id), 303)


# --- feeds -------------------------------------------------------------------------------


@bp.get("/feeds")
@staff_auth.staff_page()
def feeds(principal):
    return _feeds_page(principal)


def _feeds_page(principal, status: int = 200, error=None, url="", opml_error=None, report=None):
    page = call(
        "blog.list_feeds_page", after_id=_whole_number(request.args.get("after")), limit=FEEDS_PAGE
    )
    return render_template(
        "staff/feeds.html",
        staff=principal.staff,
        page=page,
        error=error,
        url=url,
        opml_error=opml_error,
        report=report,
    ), status


@bp.post("/feeds")
@staff_auth.staff_page()
def add_feed(principal):
    url = request.form.get("url", "").strip()[:MAX_URL_CHARS]
    _answer, refused = asked("blog.add_feed", url)
    if refused:
        return _feeds_page(principal, 400, refused, url)
    return redirect(url_for(".feeds"), 303)


@bp.get("/feeds/opml")
@staff_auth.staff_page()
def export_opml(principal):
    response = current_app.response_class(
        call("blog.export_opml")["opml"], content_type="text/x-opml; charset=utf-8"
    )
    response.headers["Content-Disposition"] = 'attachment; filename="feeds.opml"'
    return response


@bp.post("/feeds/opml")
@staff_auth.staff_page()
def import_opml(principal):
    """The blog's OPML import (as ``POST /api/v1/admin/feeds/opml``), its report shown on
    the feeds page; the request's size is capped before any view (``MAX_BODY_BYTES``)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _feeds_page(principal, 400, opml_error="Choose an OPML file to import.")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return _feeds_page(principal, 400, opml_error="That file is not UTF-8 text.")
    report, refused = asked("blog.import_opml", text)
    if refused:
        return _feeds_page(principal, 400, opml_error=refused)
    return _feeds_page(principal, report=report)


@bp.post("/feeds/<int:feed_id>/poll")
@staff_auth.staff_page()
def poll_feed(principal, feed_id: int):
    call("blog.request_poll", feed_id)
    return redirect(url_for(".feeds"), 303)


@bp.post("/feeds/<int:feed_id>/paused")
@staff_auth.staff_page()
def pause_feed(principal, feed_id: int):
    call("blog.set_feed_paused", feed_id, request.form.get("paused") == "true")
    return redirect(url_for(".feeds"), 303)


@bp.post("/feeds/<int:feed_id>/remove")
@staff_auth.staff_page()
def remove_feed(principal, feed_id: int):
    stories = request.form.get("stories")
    if stories not in ("keep", "hide"):
        return _feeds_page(principal, 400, "Say what happens to the feed's stories.")
    call("blog.remove_feed", feed_id, stories)
    return redirect(url_for(".feeds"), 303)


# --- subscribers (admins) ---------------------------------------------------------------


@bp.get("/subscribers")
@staff_auth.staff_page(ADMINS)
def subscribers(principal):
    q = request.args.get("q", "")[:MAX_ADDRESS_CHARS]
    try:
        page = call(
            "notifier.find_subscribers",
            q=q or None,
            before_id=_whole_number(request.args.get("before")),
            limit=SUBSCRIBERS_PAGE,
        )
        error = None
    except ServiceError as failure:  # a search the notifier refused (a control character)
        if failure.status >= 500:
            raise
        page, error = {"results": [], "next_before_id": None}, failure.message
    return render_template(
        "staff/subscribers.html", staff=principal.staff, page=page, q=q, error=error
    ), (400 if error else 200)


@bp.get("/subscribers/<int:subscriber_id>")
@staff_auth.staff_page(ADMINS)
def subscriber(principal, subscriber_id: int):
    return _subscriber_page(principal, subscriber_id)


def _subscriber_page(principal, subscriber_id: int, template="staff/subscriber.html", **state):
    if subscriber_id > MAX_ID:
        abort(404)
    status = state.pop("status", 200)
    found = call("notifier.get_subscriber", subscriber_id)
    history = merged_history("subscriber", str(subscriber_id), None, AUDIT_PAGE)
    return render_template(
        template,
        staff=principal.staff,
        subscriber=found,
        history=history,
        done=request.args.get("done"),
        **state,
    ), status


# What each action on a subscriber's page asks of the notifier, and what the page says after.
SUBSCRIBER_ACTIONS = {
    "resend-confirmation": ("notifier.resend_confirmation", "confirmation sent"),
    "unsubscribe": ("notifier.unsubscribe_subscriber", "unsubscribed"),
}


@bp.post("/subscribers/<int:subscriber_id>/<action>")
@staff_auth.staff_page(ADMINS)
def act_on_subscriber(principal, subscriber_id: int, action: str):
    if action not in SUBSCRIBER_ACTIONS or subscriber_id > MAX_ID:
        abort(404)
    task, done = SUBSCRIBER_ACTIONS[action]
    _answer, refused = asked(task, subscriber_id)
    if refused:  # not pending any more, erased meanwhile: said on the page
        return _subscriber_page(principal, subscriber_id, error=refused, status=409)
    return redirect(url_for(".subscriber", subscriber_id=subscriber_id, done=done), 303)


@bp.get("/subscribers/<int:subscriber_id>/erase")
@staff_auth.staff_page(ADMINS)
def confirm_erasure(principal, subscriber_id: int):
    """Erasing cannot be undone: a page of its own asks first."""
    return _subscriber_page(principal, subscriber_id, "staff/subscriber_erase.html")


@bp.post("/subscribers/<int:subscriber_id>/erase")
@staff_auth.staff_page(ADMINS)
def erase_subscriber(principal, subscriber_id: int):
    if request.form.get("confirm") != "erase":
        return _subscriber_page(
            principal,
            subscriber_id,
            "staff/subscriber_erase.html",
            error="Tick the box to say the subscriber asked to be erased.",
            status=400,
        )
    call("notifier.erase_subscriber", subscriber_id)
    return redirect(url_for(".subscriber", subscriber_id=subscriber_id, done="erased"), 303)


# --- staff members (admins) and the audit log --------------------------------------------


@bp.get("/members")
@staff_auth.staff_page(ADMINS)
def members(principal):
    return _members_page(principal)


def _members_page(principal, status: int = 200, error=None, form=None):
    found = call("staff.list_members")["results"]
    return render_template(
        "staff/members.html",
        staff=principal.staff,
        members=found,
        roles=ROLES,
        error=error,
        form=form or {},
    ), status


@bp.post("/members")
@staff_auth.staff_page(ADMINS)
def add_member(principal):
    form = {
        "email": request.form.get("email", "").strip()[:254],
        "name": request.form.get("name", "").strip()[:200],
        "role": request.form.get("role", ""),
    }
    if form["role"] not in ROLES or not form["email"]:
        return _members_page(principal, 400, "Give an address and a role.", form)
    _answer, refused = asked("staff.add_member", form["email"], form["role"], form["name"] or None)
    if refused:
        return _members_page(principal, 400, refused, form)
    return redirect(url_for(".members"), 303)


@bp.post("/members/<int:staff_id>")
@staff_auth.staff_page(ADMINS)
def change_member(principal, staff_id: int):
    """A member's role, or their access: disabling ends every session of theirs at once."""
    changes = {}
    if request.form.get("role") in ROLES:
        changes["role"] = request.form["role"]
    if request.form.get("access") in ("disable", "enable"):
        changes["disabled"] = request.form["access"] == "disable"
    if not changes:
        return _members_page(principal, 400, "Choose a role, or disable or enable the member.")
    call("staff.update_member", staff_id, changes)
    return redirect(url_for(".members"), 303)


@bp.get("/members/<int:staff_id>/sessions")
@staff_auth.staff_page(ADMINS)
def member_sessions(principal, staff_id: int):
    member = _member(staff_id)
    return render_template(
        "staff/member_sessions.html",
        staff=principal.staff,
        member=member,
        sessions=call("staff.list_sessions", staff_id)["results"],
        current_session=principal.session_id,
        end_url=lambda session_id: url_for(
            ".end_member_session", staff_id=staff_id, session_id=session_id
        ),
    )


@bp.post("/members/<int:staff_id>/sessions/<int:session_id>/end")
@staff_auth.staff_page(ADMINS)
def end_member_session(principal, staff_id: int, session_id: int):
    """One session of a member's ended now (a lost laptop), the others kept."""
    _member(staff_id)
    # Given as the owner: a session of anyone else's is refused (403), not ended.
    call("staff.revoke_session", session_id, staff_id)
    return redirect(url_for(".member_sessions", staff_id=staff_id), 303)


def _member(staff_id: int) -> dict:
    found = [m for m in call("staff.list_members")["results"] if m["id"] == staff_id]
    if not found:
        abort(404)
    return found[0]


@bp.get("/audit")
@staff_auth.staff_page()
def audit_log(principal):
    cursor = request.args.get("cursor", "")[:500] or None
    history = merged_history(None, None, cursor, AUDIT_PAGE)
    return render_template("staff/audit.html", staff=principal.staff, history=history)
