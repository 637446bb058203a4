"""subscribers: a GIN index on the followed cities, for counting a campaign's audience

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The followers of a campaign's cities are found with ``@> ANY`` through it, rather than
    # by reading every subscriber's list (campaigns._follows_any). Without a pending list
    # (fastupdate off): subscribers come one at a time, and a search reads the whole pending
    # list, up to 4 MB of it (80 ms), until a vacuum empties it. PostgreSQL only, like
    # ix_subscribers_email_lower: SQLite has no such index, and reads the lists.
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_subscribers_city_ids",
            "subscribers",
            [sa.text("(CAST(city_ids AS JSONB)) jsonb_path_ops")],
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_subscribers_city_ids", table_name="subscribers")
