"""Bearer-token authentication for the admin API: one token from ``ADMIN_TOKEN``,
compared in constant time, wrong ones limited per client (``admin_token.py``). With no token
configured the admin API is off."""

from __future__ import annotations

from apiflask import HTTPTokenAuth
from apiflask.exceptions import HTTPError

from services.gateway.admin_token import admin_token_matches
from services.gateway.clients import settings

admin_auth = HTTPTokenAuth(scheme="Bearer", description="The ADMIN_TOKEN of this deployment")


@admin_auth.verify_token
def verify_token(token: str):
    expected = settings().admin_token
    if expected is None:
        raise HTTPError(
            403,
            "the admin API is off: set ADMIN_TOKEN to turn it on",
            extra_data={"code": "admin_disabled"},
        )
    if admin_token_matches(token or "", expected):
        return "admin"
    return None


@admin_auth.error_processor
def auth_error(error: HTTPError):
    code = (error.extra_data or {}).get("code") or (
        "unauthorized" if error.status_code == 401 else "forbidden"
    )
    message = (
        "a valid admin token is required (Authorization: Bearer <ADMIN_TOKEN>)"
        if error.status_code == 401
        else error.message
    )
    return {"error": {"code": code, "message": message}}, error.status_code, error.headers
