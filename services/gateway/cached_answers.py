"""Service answers passed through as JSON, cached per generation (see ``cache.py``). The API
and the pages share the entries: the same name and parameters mean the same answer."""

from __future__ import annotations

import functools
import hashlib
import json

from flask import Response, current_app, request

from services.gateway import json_output
from services.gateway.clients import cache, service_client

# Seconds a browser or proxy may reuse an answer before asking again (with its ETag).
CLIENT_MAX_AGE = 30


def _as_json(task: str, args: tuple, kwargs: dict):
    def produce() -> str:
        # Services answer in the documented shape (the API tests hold them to the schema);
        # serializing through marshmallow again would cost a fifth of a millisecond.
        return json_output.dumps(service_client().call(task, *args, **kwargs))

    return produce


def cached_json(generation: str, name: str, params: dict, task: str, *args, **kwargs) -> Response:
    """The service's answer as JSON, from the cache while ``generation`` has not moved."""
    produce = _as_json(task, args, kwargs)
    body = cache().get_or_call(generation, name, params, produce, alias=_raw_key(name))
    return _conditional(body)


def cached_answer(generation: str, name: str, params: dict, task: str, *args, **kwargs) -> dict:
    """The service's answer as data, for pages."""
    return json.loads(cache().get_or_call(generation, name, params, _as_json(task, args, kwargs)))


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


def _raw_key(name: str) -> str:
    return f"raw:{name}:{request.full_path}"


def hot(generation: str, name: str):
    """Serve a request seen before, with the generation unchanged, before its arguments are
    even parsed (the arguments were valid the first time)."""

    def peek() -> str | None:
        return cache().peek(generation, _raw_key(name))

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            body = peek()
            if body is not None:
                return _conditional(body)
            return view(*args, **kwargs)

        return wrapper

    return decorate
