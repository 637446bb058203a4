"""The staff dashboard at /admin: feeds' health, the queues, the last digest run and the
subscriber counts, each from the service that knows it. A section whose service is down says
so and the rest still shows.

Staff sign in by pasting ADMIN_TOKEN. The signed session cookie (HttpOnly, SameSite: see
``web/security.py``) then holds a keyed hash of the token, never the token, and the session
generation it was made in: changing ADMIN_TOKEN signs everyone out, "Sign out everywhere" moves
the generation (a counter in Redis, since the gateway keeps no database) and so ends every
session made before, and a sign-in lasts ``SIGNED_IN_FOR`` at most. With no ADMIN_TOKEN the
dashboard is off, like the admin API."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from apiflask import APIBlueprint
from flask import (
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from services.gateway.calls import call_many
from services.gateway.clients import redis_client, settings
from services.gateway.web.admin_token import admin_token_matches
from services.gateway.web.security import never_stored
from shared.errors import ServiceError
from shared.queues import queue_lengths

bp = APIBlueprint("admin_dashboard", __name__, url_prefix="/admin", enable_openapi=False)

SESSION_KEY = "admin"
SIGNED_IN_FOR = 12 * 3600  # seconds
# Followed by the token's mark: a new ADMIN_TOKEN starts its own count.
GENERATION_KEY = "sistercities:admin:session-generation:{mark}"


@dataclass
class Section:
    """What one part of the page shows: the answer, or why there is none."""

    data: Any = None
    unavailable: str | None = None


@bp.before_request
def dashboard_needs_a_token():
    if settings().admin_token is None:
        return render_template("admin/sign_in.html", off=True), 403
    return None


bp.after_request(never_stored)  # staff's own view: no browser or proxy keeps a copy


@bp.get("")
def dashboard():
    if not signed_in():
        return redirect(url_for(".sign_in"), 303)
    # The queues first: what waits there is not yet this page's own questions.
    queues = _queues()
    (feeds, _), (stats, _) = call_many(
        [("blog.list_feeds", (), {}), ("notifier.subscriber_stats", (), {})]
    )
    return render_template(
        "admin/dashboard.html",
        feeds=_section(feeds),
        stats=_section(stats),
        queues=queues,
        moment=moment,
    )


@bp.get("/sign-in")
def sign_in():
    if signed_in():
        return redirect(url_for(".dashboard"), 303)
    return render_template("admin/sign_in.html")


@bp.post("/sign-in")
def check_token():
    token = request.form.get("token", "").strip()
    if not admin_token_matches(token, settings().admin_token):
        return render_template("admin/sign_in.html", error="That is not the admin token."), 401
    session.clear()
    session[SESSION_KEY] = {
        "mark": _token_mark(),
        "since": int(time.time()),
        "generation": _generation(),
    }
    return redirect(url_for(".dashboard"), 303)


@bp.post("/sign-out")
def sign_out():
    session.clear()
    return redirect(url_for(".sign_in"), 303)


@bp.post("/sign-out-everywhere")
def sign_out_everywhere():
    """Ends every staff session, on every browser (a lost laptop, a token seen)."""
    if signed_in():
        try:
            redis_client().incr(_generation_key())
        except redis.RedisError:
            abort(503, "Redis cannot be reached: no session was ended")
    session.clear()
    return redirect(url_for(".sign_in"), 303)


def signed_in() -> bool:
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict) or not isinstance(held.get("since"), int):
        return False
    if time.time() - held["since"] > SIGNED_IN_FOR:
        return False
    if not hmac.compare_digest(str(held.get("mark", "")), _token_mark()):
        return False
    return held.get("generation") == _generation()


def _generation() -> int:
    """The current session generation; a 503 when Redis cannot say (a session that may have
    been ended must not be taken as valid)."""
    try:
        return int(redis_client().get(_generation_key()) or 0)
    except redis.RedisError:
        abort(503, "Redis cannot be reached: staff sessions cannot be checked")


def _generation_key() -> str:
    return GENERATION_KEY.format(mark=_token_mark()[:32])


def _token_mark() -> str:
    key = current_app.secret_key.encode()
    token = settings().admin_token.encode()
    return hmac.new(key, b"admin-session:" + token, hashlib.sha256).hexdigest()


def _section(outcome: Any) -> Section:
    if isinstance(outcome, ServiceError):
        if outcome.status < 500:
            raise outcome
        return Section(unavailable=outcome.message)
    return Section(data=outcome)


def _queues() -> Section:
    try:
        return Section(data=queue_lengths(redis_client()))
    except redis.RedisError:
        return Section(unavailable="Redis cannot be reached")


def moment(iso: str | None) -> str:
    """A service's ISO 8601 moment as staff read it: 2026-11-28 14:05 UTC."""
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
