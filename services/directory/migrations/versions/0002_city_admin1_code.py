"""cities.admin1_code: GeoNames' first-level division code

Revision ID: 0002
Revises: 0001

Schema only: `sistercities directory import-cities` fills the column (and merges the places
earlier partnership imports created into the GeoNames places they are), keeping every id.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("admin1_code", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cities", schema=None) as batch_op:
        batch_op.drop_column("admin1_code")
