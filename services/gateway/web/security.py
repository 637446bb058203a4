"""What every response and form carries: security headers with a strict Content-Security-Policy,
CSRF protection on the site's forms (a token in each form, or for the public forms on cached
pages, the browser's word on where the request comes from), and the per-client rate limits
that routes declare (``rate_limits.rate_limited``), kept in Redis."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import redis
from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

from services.gateway.config import GatewaySettings
from services.gateway.web.errors import error_response
from services.gateway.web.rate_limits import (
    SCOPES,
    RateLimiter,
    Refusal,
    client_key,
    declared_limits,
)

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

CSRF_TOKEN_SECONDS = 3600
LIMITER = "sistercities_rate_limits"  # its key in app.extensions


def csrf_exempt(view: Callable) -> Callable:
    """Declares, at the route, a form POST that carries its own authority instead of a CSRF
    token (a signed token in the address, a signature of the body). Put it right under the
    route's decorator."""
    view.csrf_exempt = True
    return view


def same_origin_form(view: Callable) -> Callable:
    """Declares, at the route, a public form that carries no CSRF token: a POST is accepted
    only when the browser says it comes from this site (``from_this_site``). The pages that
    hold such a form then hold nothing of one visitor and are cached whole, the same bytes for
    everyone. Put it right under the route's decorator."""
    view.same_origin_form = True
    return view


def from_this_site(request: Request, site_origin: str) -> bool:
    """Whether a state-changing request comes from this site, as the browser tells it; the
    rule of Go 1.25's ``net/http.CrossOriginProtection`` (https://go.dev/src/net/http/csrf.go:
    "rejecting non-safe cross-origin browser requests", detected "with the Sec-Fetch-Site
    header, available in all browsers since 2023, or by comparing ... the Origin header with
    the Host header"), also ASP.NET Core's, Echo's and Hono's.

    ``Sec-Fetch-Site`` (a header no page's script can set): ``same-origin`` or ``none`` (typed
    or bookmarked by the visitor) is this site; ``same-site``, ``cross-site`` or anything else
    is not. Without it, an ``Origin`` must be this request's own scheme://host or
    ``site_origin`` (PUBLIC_BASE_URL's, as a proxy in front may change the scheme); ``null``
    (a sandboxed or privacy-stripped page) is refused. Neither header: not a browser (nothing
    a forged page could make send this), or a browser from before 2020; allowed, as Go does,
    which accepts that old browsers' risk."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "")
    if fetch_site:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin", "")
    if not origin:
        return True
    return origin.lower() in (f"{request.scheme}://{request.host}".lower(), site_origin)


def origin_of(url: str) -> str:
    """scheme://host[:port] of an address, as browsers write it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def never_stored(response: Response) -> Response:
    """For the staff's pages (``bp.after_request(never_stored)``): no browser or proxy keeps
    a copy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def too_many_requests(refusal: Refusal):
    return error_response(
        429,
        f"too many requests ({refusal.rule.text}); try again in {refusal.retry_after} s",
        headers={"Retry-After": str(refusal.retry_after)},
    )


def csrf_failure(status: int):
    return error_response(
        status,
        "This form expired or did not come from this site: reload the page and send it again.",
        "csrf_failed",
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
    limiter = RateLimiter(redis_client, {scope: getattr(settings, scope) for scope in SCOPES})
    app.extensions[LIMITER] = limiter
    # Read from the routes once every blueprint is registered (``create_app`` installs this last).
    limits = declared_limits(app.view_functions)
    exempt = {name for name, view in app.view_functions.items() if getattr(view, "csrf_exempt", 0)}
    by_origin = {
        name for name, view in app.view_functions.items() if getattr(view, "same_origin_form", 0)
    }
    site_origin = origin_of(settings.public_base_url)

    @app.before_request
    def check_rate_limit():
        # Before the CSRF check: a form refused for its token still counts.
        declared = limits.get(request.endpoint)
        if declared is None or (
            declared.methods is not None and request.method not in declared.methods
        ):
            return None
        refusal = limiter.hit(declared.scope, client_key(request.remote_addr))
        if refusal is None:
            return None
        return too_many_requests(refusal)

    defaults = list(HEADERS.items())
    if settings.public_base_url.startswith("https://"):
        defaults.append(("Strict-Transport-Security", "max-age=31536000"))

    @app.before_request
    def check_csrf():
        if (
            request.method not in ("POST", "PUT", "PATCH", "DELETE")
            # Unrouted requests go on to their 404 or 405.
            or request.endpoint is None
            or request.path.startswith("/api/")
            or request.endpoint in exempt
        ):
            return None
        if request.endpoint in by_origin:
            # 403, as Go and Fetch Metadata's guidance answer: the request is well formed,
            # its origin is not allowed. A token that failed stays a 400 (reload and resend).
            return None if from_this_site(request, site_origin) else csrf_failure(403)
        csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def csrf_failed(_error: CSRFError):
        return csrf_failure(400)

    @app.after_request
    def add_headers(response: Response) -> Response:
        # A view may have set its own (the API docs' policy). Not Headers.setdefault: every
        # header it does not find costs it an exception, a tenth of a cached answer's time.
        present = {name.lower() for name, _value in response.headers}
        response.headers.extend(
            [(name, value) for name, value in defaults if name.lower() not in present]
        )
        return response
