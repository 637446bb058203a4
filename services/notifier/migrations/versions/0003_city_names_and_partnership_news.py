"""city names and partnership news

Revision ID: 0003
Revises: 0002

"""

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_cities",
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint("city_id"),
    )
    op.create_table(
        "partnership_news",
        sa.Column("partnership_id", sa.Integer(), nullable=False),
        sa.Column("city_ids", sa.JSON(), nullable=False),
        sa.Column("since", sa.Integer(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("partnership_id"),
    )
    with op.batch_alter_table("partnership_news", schema=None) as batch_op:
        batch_op.create_index("ix_partnership_news_received", ["received_at"], unique=False)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepted_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("accepted_at")
    with op.batch_alter_table("partnership_news", schema=None) as batch_op:
        batch_op.drop_index("ix_partnership_news_received")

    op.drop_table("partnership_news")
    op.drop_table("known_cities")
