"""consent follow-up cursor

Receipts and "permission changed" messages are made from the ledger after a change commits
(services/consent_followups.py). The follower starts at the end of the ledger as it is: every earlier
change already got its receipt and message in its own transaction.

Revision ID: 0012_consent_followup
Revises: 0011_projection_without_fks
Create Date: 2026-11-29 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dsr_gateway.db.types

revision: str = "0012_consent_followup"
down_revision: str | None = "0011_projection_without_fks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_followup",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("tx_order", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", dsr_gateway.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_consent_followup")),
    )
    # One position per follower (services/consent_followups.py): receipts, and messages.
    op.execute(
        "INSERT INTO consent_followup (name, tx_order, event_id, updated_at) "
        "SELECT f.name, COALESCE(MAX(e.tx_order), 0), COALESCE(MAX(e.id), 0), CURRENT_TIMESTAMP "
        "FROM (SELECT 'receipts' AS name UNION ALL SELECT 'messages') AS f "
        "LEFT JOIN consent_event AS e ON true GROUP BY f.name"
    )


def downgrade() -> None:
    op.drop_table("consent_followup")
