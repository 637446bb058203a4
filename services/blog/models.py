"""The blog's tables: the feeds it syndicates and the posts it stored from them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import audit_table
from shared.db import UTCDateTime
from shared.events import event_tables


class Base(DeclarativeBase):
    pass


outbox_events, handled_events = event_tables(Base.metadata)
audit_log = audit_table(Base.metadata)


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
    # Staff paused it: not fetched, and its hub subscription ended, until resumed.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the scheduler hands the feed to a worker, so the next tick does not hand it
    # out again while that fetch is still running.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The hand-out (the scheduling task's id) that claimed it: if that task dies before it
    # has sent every fetch, its redelivered message sends them, instead of the feed waiting
    # for the lease to run out.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # The directory cities of the organisation the feed belongs to (the Nashville sister
    # cities group's feed: Nashville), set by staff: evidence for its stories' city links.
    city_ids: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")


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
    # The directory's last answer for this content: [{"id", "evidence"}], kept so that a
    # staff correction is applied to it without asking again.
    found_cities: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    # The content hash the city links were worked out for; the post is announced
    # (blog.post_published / post_updated) when its links are current.
    linked_hash: Mapped[str | None] = mapped_column(String(64))
    # The directory's version the links came from: a city added since may be in the text.
    linked_version: Mapped[int | None] = mapped_column(Integer)
    link_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    announced: Mapped[bool] = mapped_column(default=False)
    # Announcements made of it so far: each carries its number, so a consumer that handles
    # two of them out of order keeps the newer.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Staff removed its feed and chose to hide its stories: kept (they may have been mailed,
    # and the same story may come back through another feed) but shown nowhere public.
    hidden: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Staff featured it on the home page: one story at a time (featuring another clears it).
    featured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DirectorySeen(Base):
    """One row: the directory's version as its last ``directory.cities_changed`` said. Posts
    linked from an older directory are asked about again."""

    __tablename__ = "directory_seen"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class PostCity(Base):
    """A city the story is linked to: found in its text by the directory, or added by staff."""

    __tablename__ = "post_cities"
    __table_args__ = (Index("ix_post_cities_city", "city_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(10), default="found", server_default="found")
    # What made the link, in words for staff: the directory's evidence ("'Belfast' — sister
    # of Nashville, mentioned in the same story"), or the staff correction.
    evidence: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")


class PostCityCorrection(Base):
    """Staff's word on one city of one story, kept apart from what the directory finds so
    that it holds whenever the links are worked out again (a re-poll, an edit)."""

    __tablename__ = "post_city_corrections"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(10))  # add or remove
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PostTag(Base):
    __tablename__ = "post_tags"
    __table_args__ = (Index("ix_post_tags_slug", "slug", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(200), primary_key=True)


class HubSubscription(Base):
    """A WebSub subscription to a feed's hub (``websub.py``): where the hub pushes (a callback
    on the gateway named by an unguessable token), the secret that signs what it pushes, and
    how far the handshake has come."""

    __tablename__ = "hub_subscriptions"
    __table_args__ = (Index("ix_hub_subscriptions_due", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Kept after the feed is removed (NULL then) until the hub confirms the unsubscription.
    feed_id: Mapped[int | None] = mapped_column(
        ForeignKey("feeds.id", ondelete="SET NULL"), index=True
    )
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    secret: Mapped[str] = mapped_column(String(100))
    hub_url: Mapped[str] = mapped_column(String(2000))
    topic: Mapped[str] = mapped_column(String(2000))
    # Whether the stories it pushes get Medium's global keys: the feed that named the hub was
    # served by Medium (post_keys.py), and so is trusted to name Medium's hub.
    medium_keys: Mapped[bool] = mapped_column(default=False)
    # requested (asked; the hub's check of intent is awaited), active (checked; the hub
    # pushes until expires_at), failed (refused, unreachable, denied or lapsed: polling is in
    # charge), unsubscribing (the feed is gone or names another hub)
    state: Mapped[str] = mapped_column(String(16))
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the periodic job next looks at it: renewal of an active one, the end of the wait
    # for a check of intent, the end of a failure's backoff.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_delivery_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
