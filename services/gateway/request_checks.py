"""What the gateway refuses before any service sees it, on every route: an id in an address
that no row can have, and a JSON body holding what is not text."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from apiflask import APIFlask
from apiflask.validators import Range
from flask import request
from werkzeug.exceptions import BadRequest, NotFound

# Every service keeps its ids in 32-bit integer columns: a bigger number names nothing, and
# PostgreSQL would fail on it rather than find nothing.
MAX_ID = 2**31 - 1
ID = Range(min=1, max=MAX_ID)


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
        with contextlib.suppress(ValueError):  # not JSON: the route's own parsing says so
            body = json.loads(request.get_data(cache=True))
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


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
