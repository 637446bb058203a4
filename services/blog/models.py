"""The blog's tables: the feeds it syndicates and the posts it stored from them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UTCDateTime
from shared.events import event_tables


class Base(DeclarativeBase):
    pass


outbox_events, handled_events = event_tables(Base.metadata)


class Feed(Base):
    """A feed and everything the poller needs to fetch it politely: validators for the
    conditional GET, the adaptive interval, and the health staff see."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    title: Mapped[str | None] = mapped_column(String(500))
    site_url: Mapped[str | None] = mapped_column(String(2000))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # ok, not_modified, error
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # A feed that parsed with problems (feedparser's "bozo"): kept, and said here.
    warning: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set when the scheduler hands the feed to a worker, so the next tick does not hand it
    # out again while that fetch is still running.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The hand-out (the scheduling task's id) that claimed it: if that task dies before it
    # has sent every fetch, its redelivered message sends them, instead of the feed waiting
    # for the lease to run out.
    claimed_by: Mapped[str | None] = mapped_column(String(64))


class Post(Base):
    """One story, stored once whatever link form or feed it arrived through."""

    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_newest", "published_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    feed_id: Mapped[int | None] = mapped_column(
        ForeignKey("feeds.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(1000))
    author: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2000))
    image: Mapped[str | None] = mapped_column(String(2000))
    excerpt: Mapped[str] = mapped_column(Text)
    content_html: Mapped[str] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JSON, default=list)  # [{"slug", "name"}]
    reading_minutes: Mapped[int] = mapped_column(Integer, default=1)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    city_ids: Mapped[list] = mapped_column(JSON, default=list)
    # The content hash the city links were worked out for; the post is announced
    # (blog.post_published / post_updated) when its links are current.
    linked_hash: Mapped[str | None] = mapped_column(String(64))
    link_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    announced: Mapped[bool] = mapped_column(default=False)


class PostCity(Base):
    __tablename__ = "post_cities"
    __table_args__ = (Index("ix_post_cities_city", "city_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class PostTag(Base):
    __tablename__ = "post_tags"
    __table_args__ = (Index("ix_post_tags_slug", "slug", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(200), primary_key=True)
