"""Bearer-token authentication for /metrics: Prometheus sends ``METRICS_TOKEN`` (its scrape
config's ``authorization``), compared in constant time. With no token configured the metrics
are off: request counts by route and status tell an outsider how the site is used and how it
fails."""

from __future__ import annotations

import hmac

from apiflask import HTTPTokenAuth
from apiflask.exceptions import HTTPError

from services.gateway.clients import settings
from services.gateway.web.errors import error_body

METRICS_OFF = "metrics are off: set METRICS_TOKEN to serve them"

metrics_auth = HTTPTokenAuth(
    scheme="Bearer",
    description="The METRICS_TOKEN of this deployment",
    security_scheme_name="MetricsToken",
)


@metrics_auth.verify_token
def verify_token(token: str):
    expected = settings().metrics_token
    if expected is None:
        raise HTTPError(403, METRICS_OFF, extra_data={"code": "metrics_disabled"})
    matches = bool(token) and hmac.compare_digest(token.encode(), expected.encode())
    return "prometheus" if matches else None


@metrics_auth.error_processor
def auth_error(error: HTTPError):
    message = (
        "a valid metrics token is required (Authorization: Bearer <METRICS_TOKEN>)"
        if error.status_code == 401
        else error.message
    )
    code = (error.extra_data or {}).get("code")
    return error_body(error.status_code, message, code), error.status_code, error.headers
