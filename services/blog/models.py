"""The blog's tables. Feeds and posts arrive with the syndication work; the outbox is here
from the start so the blog can announce what it stores."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.events import event_tables


class Base(DeclarativeBase):
    pass


outbox_events, handled_events = event_tables(Base.metadata)
