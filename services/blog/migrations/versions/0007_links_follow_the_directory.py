"""Posts remember the directory version their links came from; the blog keeps the version the
directory last announced, so stories are linked again when cities change; each announcement
of a post is numbered

Revision ID: 0007
Revises: 0006

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("linked_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    seen = op.create_table(
        "directory_seen",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(seen, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("directory_seen")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("revision")
        batch.drop_column("linked_version")
