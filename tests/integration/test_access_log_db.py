"""The personal-data access log stores a large window of reads (COPY on PostgreSQL) as it stores a few."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.migrate import upgrade
from dsr_gateway.db.repositories.audit_trail import ACCESS, ACCESS_COPY_COLUMNS, COPY_MIN_ROWS, SqlAuditTrail
from dsr_gateway.services.accountability_ports import DataAccess

WHEN = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def test_the_copy_columns_are_the_tables_own() -> None:
    assert [c.name for c in ACCESS.columns if c.name != "id"] == ACCESS_COPY_COLUMNS


@pytest.mark.parametrize("count", [3, COPY_MIN_ROWS + 1])
async def test_reads_are_stored_and_read_back(database_url: str, count: int) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        store = SqlAuditTrail(engine)
        rows = [
            DataAccess(WHEN, "API_CLIENT", "shop", "Check", "consentCheck:email", f"s{i}", None)
            for i in range(count)
        ]
        rows.append(DataAccess(WHEN, "STAFF", "a" * 300, "Card", "privacyRequest", "s1", "r-1"))
        await store.add_accesses(rows)
        found = await store.accesses("s1", None, None, 10)
    finally:
        await engine.dispose()
    assert [(a.actor_kind, a.actor_id, a.what, a.request_id) for a in found] == [
        ("STAFF", "a" * 255, "privacyRequest", "r-1"),  # cut to the column's length, as the INSERT does
        ("API_CLIENT", "shop", "consentCheck:email", None),
    ]
    assert {a.occurred_at for a in found} == {WHEN}
    assert all(a.id is not None for a in found)
