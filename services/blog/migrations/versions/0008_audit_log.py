"""the audit log: who changed what and when (shared.audit)

Revision ID: 0008
Revises: 0007
"""

from shared.migrations import create_audit_table_v1, drop_audit_table_v1

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table_v1()


def downgrade() -> None:
    drop_audit_table_v1()
