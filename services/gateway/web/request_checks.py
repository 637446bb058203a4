"""What the gateway refuses before any service sees it, on every route: an id in an address
that no row can have, and a JSON body nested too deeply or holding what is not text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from apiflask import APIFlask
from flask import request
from werkzeug.exceptions import BadRequest, NotFound

from services.gateway.input_limits import MAX_ID

# No request of this API nests deeper than a few levels; Python's JSON parser recurses once a
# level and fails past about a thousand (a RecursionError, not a ValueError).
MAX_JSON_DEPTH = 32


def install_request_checks(app: APIFlask) -> None:
    @app.url_value_preprocessor
    def refuse_impossible_ids(endpoint: str | None, values: dict | None) -> None:
        for value in (values or {}).values():
            if type(value) is int and not 1 <= value <= MAX_ID:
                raise NotFound(f"no such id: ids run from 1 to {MAX_ID}")

    @app.before_request
    def refuse_json_that_is_not_text() -> None:
        # What JSON bodies carry is stored; what addresses carry is looked up, and each
        # service says what it makes of it.
        if not (request.is_json and request.content_length):
            return
        body = None
        try:
            body = json.loads(request.get_data(cache=True))
        except RecursionError:
            raise BadRequest(_TOO_DEEP) from None
        except ValueError:
            pass  # not JSON: the route's own parsing says so
        for text in _strings(body):
            problem = _not_text(text)
            if problem:
                raise BadRequest(f"the body holds {problem}")


def _not_text(text: str) -> str | None:
    """What in ``text`` no service can keep: PostgreSQL's text has no NUL, and half of a
    UTF-16 pair (JSON can spell one: \\ud83c) is no character at all."""
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone UTF-16 surrogate, not text"
    return None


_TOO_DEEP = f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"


def _strings(body: Any) -> Iterator[str]:
    """Every string in ``body``, keys too; BadRequest past ``MAX_JSON_DEPTH``. A loop, not
    recursion: a body the parser took may still be too deep to walk recursively."""
    waiting = [(body, 0)]
    while waiting:
        value, depth = waiting.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise BadRequest(_TOO_DEEP)
            if isinstance(value, dict):
                yield from value
                value = value.values()
            waiting.extend((item, depth + 1) for item in value)
