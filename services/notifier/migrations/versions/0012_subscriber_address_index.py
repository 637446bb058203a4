"""subscribers: an index on lower(email), for staff's search by the start of an address

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # text_pattern_ops: PostgreSQL reads a LIKE prefix through it whatever the collation.
    # Not on SQLite: SQLAlchemy cannot reflect an expression index there (the model says so).
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_subscribers_email_lower",
            "subscribers",
            [sa.text("lower(email) text_pattern_ops")],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_subscribers_email_lower", table_name="subscribers")
