"""consent_state without foreign keys

The projection's subject and purpose are those of the event it was folded from (`last_event_id`), and
consent_event holds both foreign keys: the projection's own pair checked the same thing again on every
write and import row (about a tenth of an import's database time).

Revision ID: 0011_projection_without_fks
Revises: 0009_reviews
Create Date: 2026-11-29 10:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_projection_without_fks"
down_revision: str | None = "0009_reviews"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("fk_consent_state_subject_id_subject", "subject_id", "subject", "id"),
    ("fk_consent_state_purpose_key_purpose", "purpose_key", "purpose", "key"),
)


def upgrade() -> None:
    # SQLite cannot drop a constraint in place: batch mode copies the table.
    with op.batch_alter_table("consent_state") as batch:
        for name, _, _, _ in FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("consent_state") as batch:
        for name, column, table, target in FOREIGN_KEYS:
            batch.create_foreign_key(name, table, [column], [target])
