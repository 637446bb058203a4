"""Who is asking: a staff member signed in (the session cookie, checked by the staff service
on every request, so a revoked session stops at once) or the machine API's ADMIN_TOKEN. The
one found is the request's actor (``shared.actor``), sent with every task it calls.

The cookie holds an opaque random id (the staff service keeps only its SHA-256): HttpOnly,
SameSite=Lax, Secure on an https site. The JSON API takes it too, so a change made with it
must also carry ``X-CSRF-Token``: a keyed hash of the session id that only pages of this site
(and ``GET /api/v1/admin/staff/me``) can read, which a cross-site form cannot send.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from flask import Flask, Response, current_app, g, make_response, redirect, request, url_for

from services.gateway.calls import call
from services.gateway.clients import settings
from services.gateway.web.errors import error_response
from shared.actor import Actor, set_actor, staff_actor, token_actor

COOKIE = "staff_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Cookie values the staff service could have made (secrets.token_urlsafe(32)): anything else
# is not worth a round trip.
MAX_TOKEN_CHARS = 64


@dataclass(frozen=True)
class Principal:
    actor: Actor
    role: str
    staff: dict[str, Any] | None = None  # the member, for a session
    session_token: str | None = None
    session_id: int | None = None

    @property
    def by_session(self) -> bool:
        return self.session_token is not None


def token_principal() -> Principal:
    return Principal(actor=token_actor("admin"), role="admin")


def signed_in_staff() -> Principal | None:
    """The staff member this request's cookie names, asked once per request."""
    if "staff_principal" in g:
        return g.staff_principal
    token = request.cookies.get(COOKIE, "")
    principal = None
    if 0 < len(token) <= MAX_TOKEN_CHARS:
        answer = call("staff.check_session", token=token)
        member = answer.get("staff")
        if member is not None:
            principal = Principal(
                actor=staff_actor(member["id"], member["name"], member["email"]),
                role=member["role"],
                staff=member,
                session_token=token,
                session_id=answer["session_id"],
            )
    g.staff_principal = principal
    return principal


def act_as(principal: Principal) -> None:
    """From here on, the request's tasks carry this actor, and its log lines name it."""
    set_actor(principal.actor)
    structlog.contextvars.bind_contextvars(actor=principal.actor["id"])


def csrf_token(session_token: str) -> str:
    key = current_app.secret_key.encode()
    return hmac.new(key, b"staff-api:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(principal: Principal) -> bool:
    """A change asked with the cookie carries the session's CSRF token."""
    if request.method in SAFE_METHODS or not principal.by_session:
        return True
    given = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(given.encode(), csrf_token(principal.session_token).encode())


def set_session_cookie(response: Response, token: str, seconds: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(0, seconds),
        path="/",
        secure=settings().public_base_url.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path="/",
        secure=settings().public_base_url.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


def install_actor_reset(app: Flask) -> None:
    """Each request starts with no actor: threads serve one request after another."""

    @app.before_request
    def nobody_yet() -> None:
        set_actor(None)

    @app.teardown_request
    def nobody_after(_error) -> None:
        set_actor(None)


def staff_page(roles: tuple[str, ...] = ("editor", "admin")) -> Callable:
    """Declares a workspace page: the view is called with the member signed in as its first
    argument (see ``signed_in_page``), or not at all."""

    def declare(view: Callable) -> Callable:
        @functools.wraps(view)
        def for_staff(*args, **kwargs):
            principal = signed_in_page(roles)
            if isinstance(principal, Response):
                return principal
            return view(principal, *args, **kwargs)

        return for_staff

    return declare


def signed_in_page(roles: tuple[str, ...] = ("editor", "admin")) -> Principal | Response:
    """For a workspace page: the member signed in, acting from here on (so what the page asks
    of a service is on record under their name), or the response to send instead: to the
    sign-in page without a session, a 403 page for a role the page is not for."""
    principal = signed_in_staff()
    if principal is None:
        return redirect(url_for("staff_pages.sign_in"), 303)
    if principal.role not in roles:
        return make_response(
            error_response(
                403,
                "This page is for admins: editors change content, not staff, subscribers "
                "or sending.",
                "forbidden",
            )
        )
    act_as(principal)
    return principal
