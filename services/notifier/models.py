"""The notifier's tables: subscribers, the delivery ledger, and its own copy of the facts it
needs from other services (stories, partnerships), kept current by their events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    cast,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import audit_table
from shared.db import UTCDateTime
from shared.events import event_tables


class Base(DeclarativeBase):
    pass


outbox_events, handled_events = event_tables(Base.metadata)
audit_log = audit_table(Base.metadata)

FREQUENCIES = ("daily", "weekly")


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


class KnownCity(Base):
    """A directory city's name, as the directory told it (partnership events, name lookups)."""

    __tablename__ = "known_cities"

    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country_code: Mapped[str] = mapped_column(String(2))


class PartnershipNews(Base):
    """A new partnership: news for whoever follows one of its cities."""

    __tablename__ = "partnership_news"
    __table_args__ = (Index("ix_partnership_news_received", "received_at"),)

    partnership_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_ids: Mapped[list] = mapped_column(JSON)
    since: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Subscriber(Base):
    """An address and what it wants. Only what is needed is kept: no IP addresses, no names."""

    __tablename__ = "subscribers"
    __table_args__ = (Index("ix_subscribers_due", "status", "frequency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    frequency: Mapped[str] = mapped_column(String(10), default="weekly")
    # Weekly digests go out on the weekday the subscriber confirmed (0 = Monday).
    weekday: Mapped[int] = mapped_column(Integer, default=0)
    city_ids: Mapped[list] = mapped_column(JSON, default=list)  # empty: all the news
    # pending -> confirmed -> unsubscribed, or bounced, or complained (a spam complaint)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Confirmation mails sent; each one's link carries its number, so only the latest link
    # confirms, and only while the subscriber is pending (or already confirmed by it).
    confirmations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    soft_failures: Mapped[int] = mapped_column(Integer, default=0)


# Staff find a subscriber by the start of their address, in any case
# (``subscriber_admin.find``); text_pattern_ops lets PostgreSQL read a LIKE prefix through it
# whatever the database's collation. PostgreSQL only: SQLAlchemy cannot reflect an
# expression index from SQLite (it warns), and an embedded database is not one of 100,000.
Index(
    "ix_subscribers_email_lower",
    func.lower(Subscriber.email).label("email_lower"),
    postgresql_ops={"email_lower": "text_pattern_ops"},
).ddl_if(dialect="postgresql")

# A campaign's audience is the followers of its cities: ``CAST(city_ids AS JSONB) @> ANY``
# finds them through this index (``campaigns._follows_any``) instead of reading every
# subscriber's list, which took 100 ms at 100,000 subscribers on each view of its page.
# No pending list (fastupdate off): a search would read all of it (migration 0014 says why).
# PostgreSQL only, as the one above.
Index(
    "ix_subscribers_city_ids",
    cast(Subscriber.city_ids, JSONB).label("city_ids_jsonb"),
    postgresql_using="gin",
    postgresql_ops={"city_ids_jsonb": "jsonb_path_ops"},
    postgresql_with={"fastupdate": "off"},
).ddl_if(dialect="postgresql")


class Story(Base):
    """A post as the blog announced it (``blog.post_published`` / ``post_updated``)."""

    __tablename__ = "stories"
    __table_args__ = (Index("ix_stories_received", "received_at"),)

    post_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(1000))
    excerpt: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2000))
    # "Medium" or the original's host; None for stories announced before it was sent.
    source_name: Mapped[str | None] = mapped_column(String(300))
    image: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the notifier learned of it: digests take what arrived since the last one, so a
    # story announced late (its links were delayed) is not skipped.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    city_ids: Mapped[list] = mapped_column(JSON, default=list)
    # The number of the blog's announcement this copy is from: an older one handled later
    # (two workers, out of order) changes nothing.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class HiddenStory(Base):
    """A story staff withdrew (``blog.post_hidden``): its copy is deleted, and an announcement
    of it handled later (events of one story may be handled out of order) is ignored until
    staff show it again (``blog.post_shown``, or an announcement numbered after the hide)."""

    __tablename__ = "hidden_stories"

    post_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hidden_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the deleted copy was first received: shown again, the story is news for the
    # digests that had not yet gone when it was hidden, not for those sent since.
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The blog's number of the hide (none from before it was sent).
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StoryCity(Base):
    __tablename__ = "story_cities"
    __table_args__ = (Index("ix_story_cities_city", "city_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("stories.post_id", ondelete="CASCADE"), primary_key=True
    )
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Delivery(Base):
    """The ledger: one row per subscriber and period, written before the message is sent and
    finished after, so no digest goes out twice and none is forgotten."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "period", name="uq_deliveries_subscriber_period"),
        Index("ix_deliveries_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    period: Mapped[str] = mapped_column(String(20))  # daily:2026-11-28, weekly:2026-W48
    # claimed -> sent (marked just before the message's last line) or empty (no news), or
    # failed (permanent); back to claimed after a temporary failure. sent_at closes the
    # subscriber's news window for the next digest.
    status: Mapped[str] = mapped_column(String(12), default="claimed")
    message_id: Mapped[str] = mapped_column(String(200))
    stories: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The hand-out (schedule task id) that claimed the row: killed before it sent every batch,
    # its redelivered message sends the rows it still holds (``ledger.claims_of``).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the server's 250 for the message was recorded. Sent without it after a crash: the
    # one message that crash may have lost (see ledger.py).
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When staff re-sent a message sent and never acknowledged (once at most, ledger.py).
    resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A campaign's row (its period is "campaign:<id>"); None for a digest's.
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )


class Campaign(Base):
    """A "Take Action" announcement: written by staff in Markdown (kept with its sanitized
    HTML and plain text, rendered once when it is saved), sent once to its audience through
    the ledger (``campaigns.py``), then shown on the public site."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_status", "status", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body_markdown: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    # {"city_ids": [...], "country_codes": [...], "sisters": bool}; no cities and no
    # countries: every confirmed subscriber.
    audience: Mapped[dict] = mapped_column(JSON)
    # draft -> scheduled -> sending -> sent (scheduled may go back to draft)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it was last handed out (campaigns.start): one still sending long after is handed
    # out again.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Every audience row claimed: from then on, no row still claimed means the send is done.
    handed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(300))  # the actor's name


class BounceReport(Base):
    """A bounce or complaint that came back to a message's return path (``bounces.py``): one
    per message and kind, so a report delivered twice counts once, and the reason a
    subscriber's mail stopped is kept."""

    __tablename__ = "bounce_reports"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "message", "kind", name="uq_bounce_reports_message"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str] = mapped_column(String(40))  # digest:<delivery id>, confirm:<number>
    kind: Mapped[str] = mapped_column(String(12))  # hard, soft, complaint
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
