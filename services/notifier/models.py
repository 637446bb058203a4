"""The notifier's tables, including its own copy of the facts it needs from other services."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.events import event_tables


class Base(DeclarativeBase):
    pass


outbox_events, handled_events = event_tables(Base.metadata)


class SisterLink(Base):
    """One partnership as the notifier knows it from ``directory.partnership_changed``.

    Stored in both directions so "the sisters of city X" is one indexed lookup.
    """

    __tablename__ = "sister_links"
    __table_args__ = (Index("ix_sister_links_city", "city_id"),)

    partnership_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sister_city_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
