"""feeds and posts

Revision ID: 0002
Revises: 0001

"""

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("site_url", sa.String(length=2000), nullable=True),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("warning", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_fetched_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("next_check_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feeds_next_check_at"), ["next_check_at"], unique=False)

    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("author", sa.String(length=300), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("image", sa.String(length=2000), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("reading_minutes", sa.Integer(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("city_ids", sa.JSON(), nullable=False),
        sa.Column("linked_hash", sa.String(length=64), nullable=True),
        sa.Column("link_requested_at", UTCDateTime(), nullable=True),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_posts_feed_id"), ["feed_id"], unique=False)
        batch_op.create_index("ix_posts_newest", ["published_at", "id"], unique=False)

    op.create_table(
        "post_cities",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "city_id"),
    )
    with op.batch_alter_table("post_cities", schema=None) as batch_op:
        batch_op.create_index("ix_post_cities_city", ["city_id", "post_id"], unique=False)

    op.create_table(
        "post_tags",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "slug"),
    )
    with op.batch_alter_table("post_tags", schema=None) as batch_op:
        batch_op.create_index("ix_post_tags_slug", ["slug", "post_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("post_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_post_tags_slug")

    op.drop_table("post_tags")
    with op.batch_alter_table("post_cities", schema=None) as batch_op:
        batch_op.drop_index("ix_post_cities_city")

    op.drop_table("post_cities")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_newest")
        batch_op.drop_index(batch_op.f("ix_posts_feed_id"))

    op.drop_table("posts")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feeds_next_check_at"))

    op.drop_table("feeds")
