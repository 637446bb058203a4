"""bounce_reports: bounces and complaints that came back to a message's return path

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "message", "kind", name="uq_bounce_reports_message"),
    )
    op.create_index("ix_bounce_reports_subscriber_id", "bounce_reports", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_bounce_reports_subscriber_id", table_name="bounce_reports")
    op.drop_table("bounce_reports")
