"""The directory's tables: cities and the partnerships between them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.audit import audit_table
from shared.events import event_tables

PARTNERSHIP_STATUSES = ("active", "inactive", "proposed")


class Base(DeclarativeBase):
    pass


outbox_events, handled_events = event_tables(Base.metadata)
audit_log = audit_table(Base.metadata)


class City(Base):
    """A place in the directory: a GeoNames city, or a smaller place a partnership import
    brought in with the coordinates it gave."""

    __tablename__ = "cities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    geonames_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    ascii_name: Mapped[str | None] = mapped_column(String(200))
    country_code: Mapped[str] = mapped_column(String(2), index=True)
    region: Mapped[str | None] = mapped_column(String(200))
    # GeoNames' first-level division code ("MN" in the US, "08" in Canada): the key other
    # parts map ISO 3166-2 codes through. None for created places and GeoNames' "00".
    admin1_code: Mapped[str | None] = mapped_column(String(20))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str | None] = mapped_column(String(64))
    # geonames, import (a place a partnership file brought in) or staff
    source: Mapped[str] = mapped_column(String(16), default="staff", server_default="staff")
    # Staff merged this record into another of the same place (the survivor): kept as a
    # tombstone so that its id still leads somewhere; never in City Search.
    merged_into: Mapped[int | None] = mapped_column(Integer)

    names: Mapped[list[CityName]] = relationship(
        back_populates="city", cascade="all, delete-orphan", passive_deletes=True
    )


class CityName(Base):
    """Every name a city is searched by, with its folded form (``names.normalize``)."""

    __tablename__ = "city_names"
    __table_args__ = (UniqueConstraint("city_id", "folded", name="uq_city_names_city_folded"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    folded: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # name or alternate

    city: Mapped[City] = relationship(back_populates="names")


class DirectoryVersion(Base):
    """One row whose number grows with every change to cities or partnerships, so each
    worker knows when its in-memory search index is stale."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Partnership(Base):
    """An undirected pair, stored once: the lower city id is always ``city_a_id``."""

    __tablename__ = "partnerships"
    __table_args__ = (
        UniqueConstraint("city_a_id", "city_b_id", name="uq_partnerships_pair"),
        CheckConstraint("city_a_id < city_b_id", name="ck_partnerships_ordered_pair"),
        CheckConstraint(
            "status IN ('active', 'inactive', 'proposed')", name="ck_partnerships_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_a_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"))
    city_b_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"), index=True)
    since: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    source: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    city_a: Mapped[City] = relationship(foreign_keys=[city_a_id])
    city_b: Mapped[City] = relationship(foreign_keys=[city_b_id])
