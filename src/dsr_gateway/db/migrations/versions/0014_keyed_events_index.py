"""the idempotency index holds keyed consent events only

A replay looks an idempotency key up by subject; most events carry no key (every imported row, most live
writes), and indexing their NULLs cost every import row an index insertion (~8% of an import's database
time) for entries no query reads.

Revision ID: 0014_keyed_events_index
Revises: 0013_export_package_deleted
Create Date: 2026-11-29 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_keyed_events_index"
down_revision: str | None = "0013_export_package_deleted"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED = sa.text("idempotency_key IS NOT NULL")
NAME, TABLE, COLUMNS = "ix_consent_event_idempotency", "consent_event", ["subject_id", "idempotency_key"]


def upgrade() -> None:
    op.drop_index(NAME, table_name=TABLE)
    op.create_index(NAME, TABLE, COLUMNS, postgresql_where=KEYED, sqlite_where=KEYED)


def downgrade() -> None:
    op.drop_index(NAME, table_name=TABLE)
    op.create_index(NAME, TABLE, COLUMNS)
