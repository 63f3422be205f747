"""The SQL chain source, events sealed by `ChainSealer` (as the app writes them) and the checkpoint store
on both databases.

The event table is created by the test itself (no test-only table in the real schema) and dropped after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.repositories.audit import SqlChainSource, SqlCheckpointStore
from dsr_gateway.db.repositories.chain_sealing import ChainSealer
from dsr_gateway.db.types import UtcDateTime
from dsr_gateway.domain.audit_chain import GENESIS_HASH, ChainHead, ChainLayout, ChainProblem
from dsr_gateway.domain.audit_checkpoint import CheckpointProblem
from dsr_gateway.domain.principal import Principal
from dsr_gateway.services.audit import AuditService, ChainRegistry
from tests.support.audit_factories import StepClock, new_signer

T0 = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
SYSTEM = Principal.system()
LAYOUT = ChainLayout(excluded=frozenset({"id"}))  # the database assigns the id, as on the app's tables


def event_table(name: str, note_server_default: str | None = None) -> Table:
    table = Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("subject_id", Integer, nullable=False),
        Column("purpose", String(63), nullable=False),
        Column("choice", String(20), nullable=False),
        Column("recorded_at", UtcDateTime, nullable=False),
        Column("details", JSON, nullable=False),
        Column(
            "note",
            String(100),
            nullable=True,
            default=None if note_server_default else "recorded",
            server_default=note_server_default,
        ),
        Column("sequence", Integer, nullable=False),
        Column("prev_hash", String(64), nullable=True),
        Column("hash", String(64), nullable=True),
    )
    Index(f"uq_{name}_chain", table.c.subject_id, table.c.sequence, unique=True)
    return table


@dataclass
class Ledger:
    engine: AsyncEngine
    table: Table
    sealer: ChainSealer
    source: SqlChainSource
    audit: AuditService

    async def append(self, subject_id: int, choice: str, minute: int) -> dict[str, object]:
        """Seal and insert one event the way the app's repositories do; returns the row as stored."""
        values = {
            "subject_id": subject_id,
            "purpose": "marketing_email",
            "choice": choice,
            "recorded_at": T0 + timedelta(minutes=minute),
            "details": {"channel": "EMAIL", "weight": 0.5, "topics": ["promotions", "é€😀"]},
        }
        async with self.engine.begin() as connection:
            (sealed,) = await self.sealer.seal_all(connection.execute, [values])
            statement = insert(self.table).values(sealed).returning(*self.table.columns)
            stored = (await connection.execute(statement)).one()
        return {column.name: stored[index] for index, column in enumerate(self.table.columns)}

    async def execute(self, statement: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(statement)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    engine = make_engine(database_url)
    table = event_table(f"tmp_chain_{uuid.uuid4().hex[:10]}")
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.create_all)
    sealer = ChainSealer(table, "subject_id", LAYOUT)
    source = SqlChainSource(engine, table, kind="consent", chain_column="subject_id", layout=LAYOUT)
    audit = AuditService(ChainRegistry([source]), SqlCheckpointStore(engine), new_signer(), StepClock())
    try:
        yield Ledger(engine, table, sealer, source, audit)
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.drop_all)
        await engine.dispose()


async def seed(ledger: Ledger) -> dict[int, list[dict[str, object]]]:
    rows: dict[int, list[dict[str, object]]] = {1: [], 2: []}
    for minute, (subject, choice) in enumerate(
        [(1, "GRANTED"), (2, "GRANTED"), (1, "WITHDRAWN"), (1, "GRANTED"), (2, "WITHDRAWN"), (1, "GRANTED")]
    ):
        rows[subject].append(await ledger.append(subject, choice, minute))
    return rows


async def test_sealed_events_link_and_verify_as_stored(ledger: Ledger) -> None:
    rows = await seed(ledger)
    assert [r["sequence"] for r in rows[1]] == [1, 2, 3, 4]
    assert rows[1][0]["prev_hash"] == GENESIS_HASH
    assert rows[1][1]["prev_hash"] == rows[1][0]["hash"]
    assert rows[1][0]["note"] == "recorded"  # a column default, hashed as stored
    keys = [k async for k in ledger.source.chain_keys()]
    assert keys == ["consent:1", "consent:2"]
    events = [e async for e in ledger.source.events("consent:2")]
    assert [e["id"] for e in events] == [r["id"] for r in rows[2]]
    assert await ledger.source.heads() == {
        "consent:1": ChainHead(4, rows[1][3]["hash"]),  # type: ignore[arg-type]
        "consent:2": ChainHead(2, rows[2][1]["hash"]),  # type: ignore[arg-type]
    }
    report = await ledger.audit.verify(SYSTEM)
    assert report.ok, report
    assert (report.chains_checked, report.events_checked) == (2, 6)


Tamper = Callable[[Ledger, dict[int, list[dict[str, object]]]], Coroutine[Any, Any, object]]


async def change_value(ledger: Ledger, rows: dict[int, list[dict[str, object]]]) -> object:
    t = ledger.table
    await ledger.execute(update(t).where(t.c.id == rows[1][1]["id"]).values(choice="GRANTED"))
    return rows[1][1]["id"]


async def change_json(ledger: Ledger, rows: dict[int, list[dict[str, object]]]) -> object:
    t = ledger.table
    await ledger.execute(update(t).where(t.c.id == rows[2][0]["id"]).values(details={"channel": "SMS"}))
    return rows[2][0]["id"]


async def delete_event(ledger: Ledger, rows: dict[int, list[dict[str, object]]]) -> object:
    t = ledger.table
    await ledger.execute(delete(t).where(t.c.id == rows[1][1]["id"]))
    return rows[1][2]["id"]


async def reorder_events(ledger: Ledger, rows: dict[int, list[dict[str, object]]]) -> object:
    t = ledger.table
    first, second = rows[1][1], rows[1][2]
    await ledger.execute(update(t).where(t.c.id == first["id"]).values(sequence=-1))
    await ledger.execute(update(t).where(t.c.id == second["id"]).values(sequence=first["sequence"]))
    await ledger.execute(update(t).where(t.c.id == first["id"]).values(sequence=second["sequence"]))
    return second["id"]


async def erase_hash(ledger: Ledger, rows: dict[int, list[dict[str, object]]]) -> object:
    t = ledger.table
    await ledger.execute(update(t).where(t.c.id == rows[1][3]["id"]).values(hash=None))
    return rows[1][3]["id"]


CHAIN_TAMPERING: list[tuple[str, Tamper, ChainProblem]] = [
    ("changed value", change_value, ChainProblem.HASH_MISMATCH),
    ("changed JSON value", change_json, ChainProblem.HASH_MISMATCH),
    ("deleted event", delete_event, ChainProblem.SEQUENCE_GAP),
    ("reordered events", reorder_events, ChainProblem.PREV_HASH_MISMATCH),
    ("erased hash", erase_hash, ChainProblem.UNSEALED),
]


@pytest.mark.parametrize(
    ("tamper", "problem"), [t[1:] for t in CHAIN_TAMPERING], ids=[t[0] for t in CHAIN_TAMPERING]
)
async def test_tampering_with_stored_rows_is_found(
    ledger: Ledger, tamper: Tamper, problem: ChainProblem
) -> None:
    rows = await seed(ledger)
    broken_id = await tamper(ledger, rows)
    report = await ledger.audit.verify(SYSTEM)
    assert not report.ok
    assert report.first_break is not None
    assert (report.first_break.event_id, report.first_break.problem) == (str(broken_id), problem)


async def test_truncation_after_a_checkpoint_is_found_and_growth_is_not(ledger: Ledger) -> None:
    rows = await seed(ledger)
    first = await ledger.audit.create_checkpoint(SYSTEM)
    await ledger.append(2, "GRANTED", 10)
    second = await ledger.audit.create_checkpoint(SYSTEM)
    assert (await ledger.audit.verify(SYSTEM)).ok
    assert second.heads["consent:2"].sequence == 3
    t = ledger.table
    await ledger.execute(delete(t).where(t.c.subject_id == 1, t.c.sequence == 4))
    report = await ledger.audit.verify(SYSTEM)
    assert report.first_break is None  # a shorter chain is still a consistent chain
    assert {(f.checkpoint_id, f.problem, f.chain_key) for f in report.checkpoint_findings} == {
        (first.id, CheckpointProblem.TRUNCATED, "consent:1"),
        (second.id, CheckpointProblem.TRUNCATED, "consent:1"),
    }
    assert report.checkpoints_checked == 2
    assert first.heads["consent:1"] == ChainHead(4, rows[1][3]["hash"])  # type: ignore[arg-type]


async def test_checkpoints_round_trip(ledger: Ledger) -> None:
    await seed(ledger)
    created = await ledger.audit.create_checkpoint(SYSTEM)
    store = SqlCheckpointStore(ledger.engine)
    assert await store.latest() == created
    assert [c async for c in store.all()] == [created]
    async with ledger.engine.connect() as connection:
        stored = (await connection.execute(select(ledger.table.c.hash))).scalars().all()
    assert len(stored) == 6
    assert all(isinstance(h, str) and len(h) == 64 for h in stored)


def test_a_hashed_column_with_a_database_default_is_refused() -> None:
    # The sealer hashes before the INSERT, so it cannot know a value the database would fill in.
    table = event_table("tmp_chain_server_default", note_server_default="recorded")
    with pytest.raises(ValueError, match="note has a database default"):
        ChainSealer(table, "subject_id", LAYOUT)
