"""The one way the gateway calls a service:

    call("directory.search_cities", cached=True, q="minnea", country=None, limit=20)

sends the task by name (``shared/rpc.py``) and returns its answer, or raises the
``ServiceError`` it ended with (a 404, a 400, a 503 when the service did not answer in time).

A cached call is answered from ``cache.py`` while the cache generation of the task's service
has not moved. The entry is named by the task and keyed by the call's parameters, so the API
and the pages share it whenever they ask the same thing, and nothing else names it. What moves
a generation is declared once, in the routing table (``shared/routing.py``).

``respond`` is a cached ``call`` for an API route: the answer goes out as the service wrote
it, with an ETag, never parsed. ``hot`` serves a request seen before from memory, before its
arguments are even parsed.

A page being cached whole (``web/page_cache.py``) is told the generation of each cached call
that made it, and that it cannot be kept when it made an uncached call or one failed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, current_app, request

from services.gateway.clients import GatewayClients
from services.gateway.web import json_output, page_cache
from shared.routing import cache_generation_of

# Seconds a browser or proxy may reuse an answer before asking again (with its ETag).
CLIENT_MAX_AGE = 30


def call(task: str, *args: Any, cached: bool = False, long: bool = False, **params: Any) -> Any:
    """The task's answer. ``cached``: from the cache while its service's generation holds (a
    cached call names its parameters: they are its key). ``long``: for the few admin calls
    that may take up to ``clients.LONG_CALL_TIMEOUT``."""
    if cached:
        return json.loads(_cached_text(task, args, params))
    page_cache.not_storable()
    clients = _clients()
    return (clients.long_calls if long else clients.services).call(task, *args, **params)


def respond(task: str, **params: Any) -> Response:
    """A cached call's answer as this request's JSON response, passed through as the service
    wrote it: services answer in the documented shape (the API tests hold them to the schema),
    so serializing it through the route's schema again would only add work to the hottest
    path."""
    return _conditional(_cached_text(task, (), params, alias=_raw_key()))


def call_many(calls: Iterable[tuple[str, tuple, dict]]) -> list[tuple[Any, float]]:
    """Several calls sent together, so the waits overlap: per call, its answer or the
    ``ServiceError`` it ended with, and the seconds it took."""
    page_cache.not_storable()
    return _clients().services.call_many(calls)


def hot(view: Callable) -> Callable:
    """For a route that ``respond``s from the cache: a request seen before (the same path and
    query), its generation unchanged, is answered before its arguments are even parsed (they
    were valid the first time)."""

    @functools.wraps(view)
    def answer_again(*args, **kwargs):
        body = _clients().cache.peek(_raw_key())
        if body is not None:
            return _conditional(body)
        return view(*args, **kwargs)

    return answer_again


def _clients() -> GatewayClients:
    return current_app.extensions["sistercities"]


def _cached_text(task: str, args: tuple, params: dict, alias: str | None = None) -> str:
    if args:
        raise TypeError(f"a cached call of {task} names its parameters: they are its key")
    generation = cache_generation_of(task)
    try:
        text, made_in = _clients().cache.answer(
            generation, task, params, _as_json(task, params), alias=alias
        )
    except Exception:
        page_cache.not_storable()  # the page shows that the section is missing
        raise
    page_cache.made_from(generation, made_in)
    return text


def _as_json(task: str, params: dict) -> Callable[[], str]:
    def produce() -> str:
        return json_output.dumps(_clients().services.call(task, **params))

    return produce


def _conditional(body: str) -> Response:
    """The answer with an ETag of its content: a client that has it gets a bodiless 304.
    Shared caches may keep it briefly; the site's own cache is what is invalidated at once."""
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={CLIENT_MAX_AGE}"
    response.set_etag(_etag(body))
    if "HTTP_IF_NONE_MATCH" not in request.environ:
        return response  # nothing to compare (werkzeug's check would also date the answer)
    return response.make_conditional(request)


@functools.lru_cache(maxsize=4096)
def _etag(body: str) -> str:
    """Hot answers are the same string objects again and again (the in-memory cache's), and a
    string keeps its hash: the digest of each is taken once, not on every request."""
    return hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()


def _raw_key() -> str:
    return f"raw:{request.full_path}"
