"""hidden_stories: stories staff withdrew (blog.post_hidden)

Revision ID: 0008
Revises: 0007

"""

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hidden_stories",
        sa.Column("post_id", sa.Integer(), primary_key=True),
        sa.Column("hidden_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hidden_stories")
