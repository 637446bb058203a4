"""the audit log: who changed what and when (shared.audit)

Revision ID: 0011
Revises: 0010
"""

from shared.migrations import create_audit_table_v1, drop_audit_table_v1

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table_v1()


def downgrade() -> None:
    drop_audit_table_v1()
