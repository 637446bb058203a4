"""What the admin routes share: answer shapes, and reading an uploaded file."""

from __future__ import annotations

from apiflask import HTTPError, Schema
from apiflask.fields import Integer


class Deleted(Schema):
    deleted = Integer(required=True)


def uploaded_text(upload) -> str:
    """An uploaded file as text: UTF-8, a byte order mark (some programs write one) dropped;
    anything else is a 400."""
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPError(400, "the file is not UTF-8 text") from None
