"""Service answers passed through as JSON, cached per generation (see ``cache.py``). The API
and the pages share the entries: the same name and parameters mean the same answer."""

from __future__ import annotations

import functools
import json

from flask import Response, current_app, request

from services.gateway.clients import cache, service_client


def _as_json(task: str, args: tuple, kwargs: dict):
    def produce() -> str:
        # Services answer in the documented shape (the API tests hold them to the schema);
        # serializing through marshmallow again would cost a fifth of a millisecond.
        return json.dumps(service_client().call(task, *args, **kwargs))

    return produce


def cached_json(generation: str, name: str, params: dict, task: str, *args, **kwargs) -> Response:
    """The service's answer as JSON, from the cache while ``generation`` has not moved."""
    produce = _as_json(task, args, kwargs)
    body = cache().get_or_call(generation, name, params, produce, alias=_raw_key(name))
    return current_app.response_class(body, mimetype="application/json")


def cached_answer(generation: str, name: str, params: dict, task: str, *args, **kwargs) -> dict:
    """The service's answer as data, for pages."""
    return json.loads(cache().get_or_call(generation, name, params, _as_json(task, args, kwargs)))


def _raw_key(name: str) -> str:
    return f"raw:{name}:{request.full_path}"


def hot(generation: str, name: str):
    """Serve a request seen before, with the generation unchanged, before its arguments are
    even parsed (the arguments were valid the first time)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            body = cache().peek(generation, _raw_key(name))
            if body is not None:
                return current_app.response_class(body, mimetype="application/json")
            return view(*args, **kwargs)

        return wrapper

    return decorate
