"""expired access packages are deleted

The worker deletes an access package's file once its link has expired and keeps the row as the record of
delivery (deleted_at). The expiry index covers only the packages still kept.

Revision ID: 0013_export_package_deleted
Revises: 0012_consent_followup
Create Date: 2026-11-29 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dsr_gateway.db.types

revision: str = "0013_export_package_deleted"
down_revision: str | None = "0012_consent_followup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("export_package") as batch:
        batch.add_column(
            sa.Column("deleted_at", dsr_gateway.db.types.UtcDateTime(timezone=True), nullable=True)
        )
    op.drop_index("ix_export_package_expires_at", table_name="export_package")
    op.create_index(
        "ix_export_package_expires_at",
        "export_package",
        ["expires_at"],
        postgresql_where=KEPT,
        sqlite_where=KEPT,
    )


def downgrade() -> None:
    op.drop_index("ix_export_package_expires_at", table_name="export_package")
    op.create_index("ix_export_package_expires_at", "export_package", ["expires_at"])
    with op.batch_alter_table("export_package") as batch:
        batch.drop_column("deleted_at")
