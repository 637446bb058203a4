"""What every response and form carries: security headers with a strict Content-Security-Policy,
CSRF tokens on the site's forms, and per-client rate limits kept in Redis."""

from __future__ import annotations

import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect

from services.gateway.config import GatewaySettings
from services.gateway.errors import error_response

# Everything the site uses comes from the site. Story images are the one exception: they stay
# on Medium's https hosts, so images may come from any https origin (never scripts or styles).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' https: data:",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

# Mail clients POST here for RFC 8058 one-click unsubscribe: no session, no token but the
# signed one in the address.
CSRF_EXEMPT_ENDPOINTS = frozenset({"subscriptions.unsubscribe"})

# Endpoints limited per client address, by the setting that holds each limit.
RATE_LIMITED = {
    "search_rate_limit": ("cities.search_cities", "pages.search"),
    "subscribe_rate_limit": ("subscriptions.subscribe", "pages.subscribe"),
}


def install_security(app: Flask, settings: GatewaySettings, redis_pool) -> None:
    """Call after every blueprint is registered: the limits wrap the registered views."""
    app.config.update(
        # Checked below, only for the site's forms: the JSON API takes no cookies.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
    )
    csrf = CSRFProtect(app)
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri="redis://",
        storage_options={"connection_pool": redis_pool},
        key_prefix="sistercities:limits",
        strategy="fixed-window",
        # Rate headers on every answer would cost two more Redis round trips per request;
        # only a refused request says when to come back (below).
        headers_enabled=False,
        # A limiter that cannot reach Redis lets requests through rather than failing the site.
        swallow_errors=True,
    )
    limited = {endpoint for endpoints in RATE_LIMITED.values() for endpoint in endpoints}

    @limiter.request_filter
    def not_limited() -> bool:
        # Flask-Limiter weighs every request against every limit; the others skip that work.
        return request.endpoint not in limited

    for setting, endpoints in RATE_LIMITED.items():
        # One budget per client for the API route and the page that do the same thing.
        limit = limiter.shared_limit(
            getattr(settings, setting),
            scope=setting,
            # GET of a form page is free; only what sends something counts.
            methods=["POST"] if setting == "subscribe_rate_limit" else None,
        )
        for endpoint in endpoints:
            app.view_functions[endpoint] = limit(app.view_functions[endpoint])
    https = settings.public_base_url.startswith("https://")

    @app.before_request
    def check_csrf() -> None:
        if (
            request.method in ("POST", "PUT", "PATCH", "DELETE")
            # Unrouted requests go on to their 404 or 405.
            and request.endpoint is not None
            and not request.path.startswith("/api/")
            and request.endpoint not in CSRF_EXEMPT_ENDPOINTS
        ):
            csrf.protect()

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded):
        current = limiter.current_limit
        window = error.limit.limit.get_expiry()
        left = math.ceil(current.reset_at - time.time()) if current else window
        retry_after = min(max(1, left), window)
        return error_response(
            429,
            f"too many requests ({error.description}); try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    @app.errorhandler(CSRFError)
    def csrf_failed(_error: CSRFError):
        return error_response(
            400,
            "This form expired or did not come from this site: reload the page and send it again.",
            "csrf_failed",
        )

    @app.after_request
    def add_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
