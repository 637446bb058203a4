"""hub_subscriptions: WebSub subscriptions to the hubs feeds name

Revision ID: 0005
Revises: 0004

"""

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "feed_id", sa.Integer(), sa.ForeignKey("feeds.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("callback_token", sa.String(length=64), nullable=False, unique=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("hub_url", sa.String(length=2000), nullable=False),
        sa.Column("topic", sa.String(length=2000), nullable=False),
        sa.Column("medium_keys", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_seconds", sa.Integer(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_delivery_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_hub_subscriptions_feed_id", "hub_subscriptions", ["feed_id"])
    op.create_index("ix_hub_subscriptions_due", "hub_subscriptions", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("hub_subscriptions")
