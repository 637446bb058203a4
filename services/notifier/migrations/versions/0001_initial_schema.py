"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import create_event_tables_v1, drop_event_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables_v1()
    op.create_table(
        "sister_links",
        sa.Column("partnership_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("sister_city_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("partnership_id", "city_id"),
    )
    with op.batch_alter_table("sister_links", schema=None) as batch_op:
        batch_op.create_index("ix_sister_links_city", ["city_id"], unique=False)


def downgrade() -> None:
    drop_event_tables_v1()
    with op.batch_alter_table("sister_links", schema=None) as batch_op:
        batch_op.drop_index("ix_sister_links_city")

    op.drop_table("sister_links")
