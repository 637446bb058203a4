"""Authentication for the admin API: the bearer ``ADMIN_TOKEN`` (the machine API; compared in
constant time, wrong ones limited per client, ``web/admin_token.py``) or a staff member's session
cookie (``web/staff_auth.py``, with its CSRF token on changes). Routes name the role they need:
editors change content, admins also staff, subscribers and sending. The token acts as an
admin."""

from __future__ import annotations

from apiflask import HTTPTokenAuth
from apiflask.exceptions import HTTPError

from services.gateway.clients import settings
from services.gateway.web import staff_auth
from services.gateway.web.admin_token import admin_token_matches


class BearerOrSession(HTTPTokenAuth):
    """Flask-HTTPAuth asks the token callback only when a bearer token was sent; without one,
    the staff session cookie may stand in (tests/integration/test_staff_end_to_end.py signs
    in with it, so a library change here fails loudly)."""

    def authenticate(self, auth, stored_password):
        return self.ensure_sync(self.verify_token_callback)(getattr(auth, "token", None) or "")


admin_auth = BearerOrSession(
    scheme="Bearer",
    description="The ADMIN_TOKEN of this deployment (or a staff session cookie from "
    "/staff/sign-in, with X-CSRF-Token on changes)",
)
ADMIN = ["admin"]  # roles=ADMIN on routes only admins may use
EDITOR = ["editor", "admin"]


@admin_auth.verify_token
def verify_token(token: str):
    if token:
        expected = settings().admin_token
        if expected is None:
            raise HTTPError(
                403,
                "the admin API's token is off: set ADMIN_TOKEN to turn it on, or sign in "
                "at /staff/sign-in",
                extra_data={"code": "admin_disabled"},
            )
        if not admin_token_matches(token, expected):
            return None
        principal = staff_auth.token_principal()
    else:
        principal = staff_auth.signed_in_staff()
        if principal is None:
            return None
        if not staff_auth.csrf_ok(principal):
            raise HTTPError(
                403,
                f"a change made with a staff session needs its {staff_auth.CSRF_HEADER} header "
                "(GET /api/v1/admin/staff/me gives it)",
                extra_data={"code": "csrf_failed"},
            )
    staff_auth.act_as(principal)
    return principal


@admin_auth.get_user_roles
def roles(principal: staff_auth.Principal) -> list[str]:
    return [principal.role]


@admin_auth.error_processor
def auth_error(error: HTTPError):
    code = (error.extra_data or {}).get("code") or (
        "unauthorized" if error.status_code == 401 else "forbidden"
    )
    if error.status_code == 401:
        message = (
            "a valid admin token (Authorization: Bearer <ADMIN_TOKEN>) or a staff session "
            "(sign in at /staff/sign-in) is required"
        )
    elif code == "forbidden":
        message = "this needs an admin: editors change content, not staff, subscribers or sending"
    else:
        message = error.message
    return {"error": {"code": code, "message": message}}, error.status_code, error.headers
