"""Story links keep their evidence and source; staff corrections of a story's cities; the
cities of a feed's organisation

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
    with op.batch_alter_table("post_cities") as batch:
        batch.add_column(sa.Column("source", sa.String(10), nullable=False, server_default="found"))
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("city_ids", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("found_cities", sa.JSON(), nullable=False, server_default="[]"))
    # Links stored before: what the directory found, without its words.
    connection = op.get_bind()
    found: dict[int, list[dict]] = {}
    for post_id, city_id in connection.execute(
        sa.text("SELECT post_id, city_id FROM post_cities ORDER BY post_id, city_id")
    ):
        found.setdefault(post_id, []).append({"id": city_id, "evidence": []})
    posts = sa.table("posts", sa.column("id", sa.Integer), sa.column("found_cities", sa.JSON))
    for post_id, cities in found.items():
        connection.execute(posts.update().where(posts.c.id == post_id).values(found_cities=cities))
    op.create_table(
        "post_city_corrections",
        sa.Column(
            "post_id",
            sa.Integer(),
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("city_id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("corrected_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("post_city_corrections")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("found_cities")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("city_ids")
    with op.batch_alter_table("post_cities") as batch:
        batch.drop_column("evidence")
        batch.drop_column("source")
