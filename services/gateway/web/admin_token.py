"""Checking a presented ADMIN_TOKEN, on the dashboard's sign-in form and the admin API alike:
in constant time, limited per client address (``SIGN_IN_RATE_LIMIT``), and every refusal
logged with the client and the route, never the token.

The budget is of failures, kept race-free: each attempt is counted before the comparison (so
parallel guesses cannot all pass a check made before any of them is counted) and refunded
when the token is right (so staff and scripts using the real token are never limited)."""

from __future__ import annotations

import hmac
import time

from apiflask.exceptions import HTTPError
from flask import current_app, request

from services.gateway.web.rate_limits import SIGN_IN, RateLimiter, client_key
from services.gateway.web.security import LIMITER
from shared.logs import get_logger

log = get_logger(__name__)


def admin_token_matches(given: str, expected: str) -> bool:
    """Whether ``given`` is the admin token; raises a 429 HTTPError (with Retry-After) when
    this client has failed too often."""
    limiter: RateLimiter = current_app.extensions[LIMITER]
    client = client_key(request.remote_addr)
    route = request.url_rule.rule if request.url_rule else request.path
    now = time.time()
    refusal = limiter.hit(SIGN_IN, client, now)
    if refusal is not None:
        log.warning("admin_token_attempts_limited", client=client, route=route)
        raise HTTPError(
            429,
            f"too many wrong admin tokens ({refusal.rule.text}); "
            f"try again in {refusal.retry_after} s",
            headers={"Retry-After": str(refusal.retry_after)},
            extra_data={"code": "rate_limited"},
        )
    if given and hmac.compare_digest(given.encode(), expected.encode()):
        limiter.refund(SIGN_IN, client, now)
        return True
    log.warning("admin_token_refused", client=client, route=route)
    return False
