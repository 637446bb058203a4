"""Answer shapes the admin routes share."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Integer


class Deleted(Schema):
    deleted = Integer(required=True)
