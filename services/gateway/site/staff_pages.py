"""Staff sign-in pages: a link mailed to the address, or a password; the signed-in member's
sessions (each can be ended); signing out. The staff service decides everything; these
pages ask it and set or clear the session cookie (``web/staff_auth.py``). Sign-in attempts
count against the client's ``SIGN_IN_RATE_LIMIT`` here, and against the address's and the
client's budgets in the staff service.

A mailed link opens a page with a button, as a subscription's confirmation link does: mail
scanners follow links, and one that did would use up the link (or take the session)."""

from __future__ import annotations

from datetime import UTC, datetime

from apiflask import APIBlueprint
from flask import Response, redirect, render_template, request, url_for

from services.gateway.calls import call
from services.gateway.web import staff_auth
from services.gateway.web.rate_limits import SIGN_IN, client_key, rate_limited
from services.gateway.web.security import never_stored

bp = APIBlueprint("staff_pages", __name__, url_prefix="/staff", enable_openapi=False)

MAX_EMAIL_CHARS = 254
MAX_PASSWORD_CHARS = 1000
MAX_USER_AGENT_CHARS = 300


bp.after_request(never_stored)  # staff's own view: no browser or proxy keeps a copy


def _client() -> str:
    return client_key(request.remote_addr)


def _user_agent() -> str:
    return request.headers.get("User-Agent", "")[:MAX_USER_AGENT_CHARS]


def _page(template: str, status: int = 200, **context):
    return render_template(f"staff/{template}.html", **context), status


def _too_many(answer: dict):
    wait = int(answer["retry_after"])
    page, status = _page(
        "sign_in", 429, error=f"Too many sign-in attempts: try again in {wait} seconds."
    )
    return page, status, {"Retry-After": str(wait)}


def _signed_in(answer: dict) -> Response:
    response = redirect(url_for(".home"), 303)
    expires = datetime.fromisoformat(answer["expires_at"])
    seconds = int((expires - datetime.now(UTC)).total_seconds())
    staff_auth.set_session_cookie(response, answer["session_token"], seconds)
    return response


@bp.get("/sign-in")
def sign_in():
    if staff_auth.signed_in_staff() is not None:
        return redirect(url_for(".home"), 303)
    return _page("sign_in")


@bp.post("/sign-in")
@rate_limited(SIGN_IN)
def ask_to_sign_in():
    email = request.form.get("email", "").strip()[:MAX_EMAIL_CHARS]
    password = request.form.get("password", "")[:MAX_PASSWORD_CHARS]
    if not email:
        return _page("sign_in", 400, error="Give your email address.")
    if password:
        answer = call(
            "staff.sign_in_with_password",
            email=email,
            password=password,
            client=_client(),
            user_agent=_user_agent(),
        )
    else:
        answer = call("staff.request_sign_in_link", email, _client())
    if answer["outcome"] == "rate_limited":
        return _too_many(answer)
    if answer["outcome"] == "signed_in":
        return _signed_in(answer)
    if answer["outcome"] == "link_sent":
        return _page("check_inbox", email=email)
    return _page("sign_in", 401, error="That address and password do not match.", email=email)


@bp.get("/sign-in/<token>")
def link_page(token: str):
    return _page("use_link")


@bp.post("/sign-in/<token>")
@rate_limited(SIGN_IN)
def use_link(token: str):
    answer = call(
        "staff.redeem_sign_in_link", token=token, client=_client(), user_agent=_user_agent()
    )
    if answer["outcome"] != "signed_in":
        return _page(
            "sign_in",
            400,
            error="That sign-in link has been used or has expired: ask for a new one.",
        )
    return _signed_in(answer)


@bp.get("")
def home():
    principal = staff_auth.signed_in_staff()
    if principal is None:
        return redirect(url_for(".sign_in"), 303)
    sessions = call("staff.list_sessions", principal.staff["id"])["results"]
    return _page(
        "home",
        staff=principal.staff,
        sessions=sessions,
        current_session=principal.session_id,
        end_url=lambda session_id: url_for(".end_session", session_id=session_id),
    )


@bp.post("/sessions/<int:session_id>/end")
def end_session(session_id: int):
    principal = staff_auth.signed_in_staff()
    if principal is None:
        return redirect(url_for(".sign_in"), 303)
    staff_auth.act_as(principal)
    call("staff.revoke_session", session_id, principal.staff["id"])
    return redirect(url_for(".home"), 303)


@bp.post("/sign-out")
def sign_out():
    token = request.cookies.get(staff_auth.COOKIE, "")
    if 0 < len(token) <= staff_auth.MAX_TOKEN_CHARS:
        principal = staff_auth.signed_in_staff()
        if principal is not None:
            staff_auth.act_as(principal)
        call("staff.end_session", token=token)
    response = redirect(url_for(".sign_in"), 303)
    staff_auth.clear_session_cookie(response)
    return response
