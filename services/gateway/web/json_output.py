"""The JSON the gateway writes: <, > and & inside strings go out as \\u003c, \\u003e and
\\u0026. Any parser reads the same values, and nothing anyone typed (a partnership's notes, a
feed's address, a story's title) comes back as markup, whatever a client does with the text."""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

_MARKUP = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def without_markup(text: str) -> str:
    """JSON text with its markup characters escaped: JSON has them only inside strings, where
    the escapes mean the same characters."""
    return text.translate(_MARKUP)


def dumps(value: Any) -> str:
    return without_markup(json.dumps(value))


class MarkupFreeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, for every answer it writes (schemas, errors, the OpenAPI document)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return without_markup(super().dumps(obj, **kwargs))
