"""hidden_stories.received_at and .revision: a story shown again returns to the digests still
to be sent as it was (blog.post_shown), and hides and shows handled out of order keep the last

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hidden_stories") as table:
        table.add_column(sa.Column("received_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hidden_stories") as table:
        table.drop_column("revision")
        table.drop_column("received_at")
