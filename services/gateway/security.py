"""What every response and form carries: security headers with a strict Content-Security-Policy,
CSRF tokens on the site's forms, and per-client rate limits kept in Redis."""

from __future__ import annotations

import redis
from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

from services.gateway.config import GatewaySettings
from services.gateway.errors import error_response
from services.gateway.rate_limits import RateLimiter, Refusal, client_key

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

# Endpoints limited per client address, by the setting that holds each limit. The API route
# and the page that do the same thing share one budget.
RATE_LIMITED = {
    "search_rate_limit": ("cities.search_cities", "pages.search"),
    "subscribe_rate_limit": (
        "subscriptions.subscribe",
        "pages.subscribe",
        "subscriptions.preferences_link",
    ),
}
# A GET of a form page is free; only what sends something counts.
POST_ONLY = frozenset({"subscribe_rate_limit"})
# Attempts at the admin token, on the sign-in form and the admin API (see sign_in_limits.py).
SIGN_IN_SCOPE = "sign_in_rate_limit"
CSRF_TOKEN_SECONDS = 3600
LIMITER = "sistercities_rate_limits"  # its key in app.extensions


def too_many_requests(refusal: Refusal):
    return error_response(
        429,
        f"too many requests ({refusal.rule.text}); try again in {refusal.retry_after} s",
        headers={"Retry-After": str(refusal.retry_after)},
    )


class SiteSessions(SecureCookieSessionInterface):
    """Cookie sessions for the site's pages (CSRF tokens, the staff dashboard); the JSON API
    takes no cookies, and opening a session it would never read cost a tenth of a cached
    answer's time."""

    def open_session(self, app, request):
        if request.path.startswith("/api/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def install_security(app: Flask, settings: GatewaySettings, redis_client: redis.Redis) -> None:
    app.config.update(
        # Checked below, only for the site's forms: the JSON API takes no cookies.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A form left open longer must be reloaded: a token that leaked stops working.
        WTF_CSRF_TIME_LIMIT=CSRF_TOKEN_SECONDS,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
    )
    app.session_interface = SiteSessions()
    csrf = CSRFProtect(app)
    limiter = RateLimiter(
        redis_client,
        {setting: getattr(settings, setting) for setting in (*RATE_LIMITED, SIGN_IN_SCOPE)},
    )
    app.extensions[LIMITER] = limiter
    scopes = {endpoint: setting for setting, names in RATE_LIMITED.items() for endpoint in names}

    @app.before_request
    def check_rate_limit():
        # Before the CSRF check: a form refused for its token still counts.
        scope = scopes.get(request.endpoint)
        if scope is None or (scope in POST_ONLY and request.method != "POST"):
            return None
        refusal = limiter.hit(scope, client_key(request.remote_addr))
        if refusal is None:
            return None
        return too_many_requests(refusal)

    defaults = list(HEADERS.items())
    if settings.public_base_url.startswith("https://"):
        defaults.append(("Strict-Transport-Security", "max-age=31536000"))

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

    @app.errorhandler(CSRFError)
    def csrf_failed(_error: CSRFError):
        return error_response(
            400,
            "This form expired or did not come from this site: reload the page and send it again.",
            "csrf_failed",
        )

    @app.after_request
    def add_headers(response: Response) -> Response:
        # A view may have set its own (the API docs' policy). Not Headers.setdefault: every
        # header it does not find costs it an exception, a tenth of a cached answer's time.
        present = {name.lower() for name, _value in response.headers}
        response.headers.extend(
            [(name, value) for name, value in defaults if name.lower() not in present]
        )
        return response
