"""The workspace's campaigns ("Take Action" announcements): the list with each one's status
and deliveries, the compose form, a preview as a given subscriber, a test copy to yourself,
and for admins, send now or at a set time. Server-rendered forms with their CSRF tokens,
like the rest of the workspace (``workspace.py``), each acting as the member signed in.

Cities of the audience are typed by name, one a line: a name one city has is taken, one
several have is refused with the candidates, each written ``#id`` to choose it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from apiflask import APIBlueprint
from flask import abort, redirect, render_template, request, url_for

from services.gateway.calls import call
from services.gateway.input_limits import MAX_ID
from services.gateway.site.city_names import followed_cities
from services.gateway.site.workspace import ADMINS, asked, resolve_city
from services.gateway.web import staff_auth
from services.gateway.web.security import never_stored
from shared.errors import ServiceError

bp = APIBlueprint("campaign_pages", __name__, url_prefix="/staff", enable_openapi=False)
bp.after_request(never_stored)

MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 50_000
MAX_CITY_LINES = 100
CITY_ID = re.compile(r"#(\d{1,10})\Z")
COUNTRY = re.compile(r"[A-Za-z]{2}\Z")


def _campaign_id(campaign_id: int) -> int:
    if campaign_id > MAX_ID:
        abort(404)
    return campaign_id


@bp.get("/campaigns")
@staff_auth.staff_page()
def campaigns(principal):
    return _list_page(principal)


def _list_page(principal, status: int = 200, error=None, form=None):
    text = request.args.get("page", "1")
    page = int(text) if text.isascii() and text.isdigit() and len(text) < 5 else 1
    found = call("notifier.list_campaigns", None, max(page, 1))
    return render_template(
        "staff/campaigns.html",
        staff=principal.staff,
        found=found,
        error=error,
        form=form or {"subject": "", "body": "", "cities": "", "countries": "", "sisters": False},
    ), status


def _form() -> dict:
    return {
        "subject": request.form.get("subject", "").strip()[:MAX_SUBJECT_CHARS],
        "body": request.form.get("body", "")[:MAX_BODY_CHARS],
        "cities": request.form.get("cities", "")[:5000],
        "countries": request.form.get("countries", "")[:1000],
        "sisters": request.form.get("sisters") == "yes",
    }


def _audience(form: dict) -> tuple[dict | None, str | None]:
    """The form's audience for the notifier, or why it cannot be taken."""
    city_ids = []
    lines = [line.strip() for line in form["cities"].splitlines() if line.strip()]
    if len(lines) > MAX_CITY_LINES:
        return None, f"At most {MAX_CITY_LINES} cities."
    for line in lines:
        chosen = CITY_ID.match(line)
        city_id, candidates = resolve_city(line, chosen.group(1) if chosen else None)
        if city_id is None:
            if not candidates:
                return None, f"No city is called {line}."
            named = "; ".join(
                f"#{c['id']} {c['name']}, {c.get('region') or ''} {c.get('country_code', '')}"
                for c in candidates
            )
            return None, f"Several cities are called {line}: write the one you mean as {named}."
        city_ids.append(city_id)
    codes = [code.strip().upper() for code in re.split(r"[,\s]+", form["countries"]) if code]
    if not all(COUNTRY.match(code) for code in codes):
        return None, "Countries are two-letter codes (FI, SE), separated by commas."
    return {"city_ids": city_ids, "country_codes": codes, "sisters": form["sisters"]}, None


@bp.post("/campaigns")
@staff_auth.staff_page()
def create_campaign(principal):
    form = _form()
    audience, refused = _audience(form)
    if refused is None:
        answer, refused = asked("notifier.create_campaign", form["subject"], form["body"], audience)
    if refused:
        return _list_page(principal, 400, refused, form)
    return redirect(url_for(".campaign", campaign_id=answer["id"]), 303)


@bp.get("/campaigns/<int:campaign_id>")
@staff_auth.staff_page()
def campaign(principal, campaign_id: int):
    preview, refused = None, None
    email = request.args.get("email", "").strip()[:254]
    if email:
        preview, refused = asked("notifier.preview_campaign", _campaign_id(campaign_id), email)
    return _campaign_page(
        principal, campaign_id, 400 if refused else 200, refused, preview=preview, email=email
    )


def _campaign_page(principal, campaign_id: int, status: int = 200, error=None, **extra):
    found = call("notifier.get_campaign", _campaign_id(campaign_id))
    audience = found["audience"]
    form = extra.pop("form", None) or {
        "subject": found["subject"],
        "body": found["body_markdown"],
        "cities": "\n".join(f"#{city['id']}" for city in followed_cities(audience["city_ids"])),
        "countries": ", ".join(audience["country_codes"]),
        "sisters": audience["sisters"],
    }
    return render_template(
        "staff/campaign.html",
        staff=principal.staff,
        campaign=found,
        cities=followed_cities(audience["city_ids"]),
        form=form,
        error=error,
        **extra,
    ), status


@bp.post("/campaigns/<int:campaign_id>")
@staff_auth.staff_page()
def edit_campaign(principal, campaign_id: int):
    form = _form()
    audience, refused = _audience(form)
    if refused is None:
        _answer, refused = asked(
            "notifier.update_campaign",
            _campaign_id(campaign_id),
            form["subject"],
            form["body"],
            audience,
        )
    if refused:
        return _campaign_page(principal, campaign_id, 400, refused, form=form)
    return redirect(url_for(".campaign", campaign_id=campaign_id), 303)


@bp.post("/campaigns/<int:campaign_id>/test")
@staff_auth.staff_page()
def test_campaign(principal, campaign_id: int):
    address = principal.staff["email"]
    _answer, refused = asked("notifier.request_campaign_test", _campaign_id(campaign_id), address)
    if refused:
        return _campaign_page(principal, campaign_id, 400, refused)
    return _campaign_page(principal, campaign_id, notice=f"A test copy is on its way to {address}.")


@bp.post("/campaigns/<int:campaign_id>/send")
@staff_auth.staff_page(ADMINS)
def send_campaign(principal, campaign_id: int):
    at = None
    if request.form.get("when") == "at":
        try:
            at = datetime.fromisoformat(request.form.get("at", "")[:40]).replace(tzinfo=UTC)
        except ValueError:
            return _campaign_page(principal, campaign_id, 400, "Give the time to send it at.")
    _answer, refused = asked(
        "notifier.schedule_campaign", _campaign_id(campaign_id), at.isoformat() if at else None
    )
    if refused:
        return _campaign_page(principal, campaign_id, 400, refused)
    return redirect(url_for(".campaign", campaign_id=campaign_id), 303)


@bp.post("/campaigns/<int:campaign_id>/unschedule")
@staff_auth.staff_page(ADMINS)
def unschedule_campaign(principal, campaign_id: int):
    try:
        call("notifier.unschedule_campaign", _campaign_id(campaign_id))
    except ServiceError as failure:
        if failure.status >= 500:
            raise
        return _campaign_page(principal, campaign_id, 400, failure.message)
    return redirect(url_for(".campaign", campaign_id=campaign_id), 303)
