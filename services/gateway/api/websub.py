"""WebSub callbacks: where a feed's hub checks the blog's intent and pushes new stories.

The gateway only carries them: the blog holds the subscriptions and their secrets, checks
each intent and each delivery's signature, and answers what the hub is told (the reasons for
waiting on that answer are in the blog's ``websub.py``). What the gateway refuses by itself:
a callback path that cannot be one of ours, and a body over ``MAX_DELIVERY_BYTES`` (413),
which is never read whole.
"""

from __future__ import annotations

import base64
import re

from apiflask import APIBlueprint
from flask import abort, request

from services.gateway.calls import call
from services.gateway.web.security import csrf_exempt

bp = APIBlueprint("websub", __name__, enable_openapi=False)

# The blog's callback tokens are secrets.token_urlsafe(32).
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_DELIVERY_BYTES = 1024 * 1024
MAX_PARAMETER_CHARS = 2000
PLAIN = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


def _known_shape(token: str) -> None:
    if not TOKEN.fullmatch(token):
        abort(404, "no subscription at this callback")


@bp.get("/websub/<token>")
def verify_intent(token: str):
    """The hub's check of intent (subscribe, unsubscribe) or its word that it denied us."""
    _known_shape(token)
    names = ("mode", "topic", "challenge", "lease_seconds", "reason")
    hub = {name: request.args.get(f"hub.{name}", "") for name in names}
    if any(len(value) > MAX_PARAMETER_CHARS for value in hub.values()):
        abort(404, "not a check of intent this callback asked for")
    answer = call(
        "blog.verify_intent",
        token,
        hub["mode"],
        hub["topic"],
        hub["challenge"],
        hub["lease_seconds"] or None,
        hub["reason"] or None,
    )
    return answer["body"], 200, PLAIN


@bp.post("/websub/<token>")
@csrf_exempt
def receive_delivery(token: str):
    """A delivery: accepted (202) once the blog has checked its signature and queued it."""
    _known_shape(token)
    if (request.content_length or 0) > MAX_DELIVERY_BYTES:
        abort(413, f"a delivery may hold at most {MAX_DELIVERY_BYTES:,} bytes")
    body = request.stream.read(MAX_DELIVERY_BYTES + 1)
    if len(body) > MAX_DELIVERY_BYTES:
        abort(413, f"a delivery may hold at most {MAX_DELIVERY_BYTES:,} bytes")
    call(
        "blog.receive_delivery",
        token,
        base64.b64encode(body).decode("ascii"),
        (request.content_type or "")[:200] or None,
        (request.headers.get("X-Hub-Signature") or "")[:300] or None,
    )
    return "", 202, PLAIN
