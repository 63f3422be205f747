"""Chains and checkpoints in SQL: a generic chain source over any event table, and the checkpoint store.

Chained events are written by `ChainSealer.seal_all` (db/repositories/chain_sealing.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.repositories.chain_sealing import heads_statement
from dsr_gateway.db.tables.audit import AuditCheckpointRow
from dsr_gateway.domain.audit_chain import DEFAULT_LAYOUT, ChainHead, ChainLayout
from dsr_gateway.domain.audit_checkpoint import heads_from_json, heads_to_json
from dsr_gateway.domain.errors import Conflict
from dsr_gateway.services.audit_ports import StoredCheckpoint, StoredEvent


class SqlChainSource:
    """Chains stored in `table`, one per value of `chain_column`, named `<kind>:<value>`.

    The table needs the layout's sequence, prev_hash and hash columns, and should have a unique index
    on (chain_column, sequence). Reads use Core on their own connection.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        kind: str,
        chain_column: str,
        layout: ChainLayout = DEFAULT_LAYOUT,
    ) -> None:
        self._engine = engine
        self._table = table
        self._kind = kind
        self._chain = table.c[chain_column]
        self._sequence = table.c[layout.sequence_field]
        self._heads = heads_statement(table, chain_column, layout)
        self._layout = layout

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def layout(self) -> ChainLayout:
        return self._layout

    def _key(self, value: object) -> str:
        return f"{self._kind}:{value}"

    def _value(self, chain_key: str) -> object:
        kind, _, text = chain_key.partition(":")
        if kind != self._kind:
            raise ValueError(f"chain {chain_key!r} is not a {self._kind} chain")
        python_type = self._chain.type.python_type
        return python_type(text) if python_type is not str else text

    def _row(self, row: Any) -> dict[str, object]:
        return {column.name: row[index] for index, column in enumerate(self._table.columns)}

    async def chain_keys(self) -> AsyncIterator[str]:
        async with self._engine.connect() as connection:
            result = await connection.stream(select(self._chain).distinct().order_by(self._chain))
            async for (value,) in result:
                yield self._key(value)

    async def events(self, chain_key: str) -> AsyncIterator[StoredEvent]:
        statement = select(self._table).where(self._chain == self._value(chain_key)).order_by(self._sequence)
        async with self._engine.connect() as connection:
            result = await connection.stream(statement)
            async for row in result:
                yield self._row(row)

    async def all_events(self) -> AsyncIterator[tuple[str, StoredEvent]]:
        statement = select(self._table).order_by(self._chain, self._sequence)
        async with self._engine.connect() as connection:
            result = await connection.stream(statement)
            async for row in result:
                event = self._row(row)
                yield self._key(event[self._chain.name]), event

    async def heads(self) -> dict[str, ChainHead]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(self._heads)).all()
        return {self._key(chain): ChainHead(sequence, digest) for chain, sequence, digest in rows}


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        id=row.id,
        created_at=row.created_at,
        heads=heads_from_json(row.heads),
        root=row.root,
        jws=row.jws,
        key_id=row.key_id,
    )


class SqlCheckpointStore:
    """Checkpoints, each written in its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._table: Table = AuditCheckpointRow.__table__  # type: ignore[attr-defined]

    async def add(
        self,
        created_at: datetime,
        heads: Mapping[str, ChainHead],
        root: str,
        jws: str,
        key_id: str,
        prev_digest: str | None,
    ) -> StoredCheckpoint:
        values = {
            "created_at": created_at,
            "heads": heads_to_json(heads),
            "root": root,
            "prev_digest": prev_digest,
            "jws": jws,
            "key_id": key_id,
        }
        try:
            async with self._engine.begin() as connection:
                new_id = (
                    await connection.execute(insert(self._table).values(values).returning(self._table.c.id))
                ).scalar_one()
        except IntegrityError as exc:
            raise Conflict("Another checkpoint was created at the same moment; create it again.") from exc
        return StoredCheckpoint(new_id, created_at, dict(heads), root, jws, key_id)

    async def latest(self) -> StoredCheckpoint | None:
        statement = select(self._table).order_by(self._table.c.id.desc()).limit(1)
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return _checkpoint(row) if row else None

    async def all(self) -> AsyncIterator[StoredCheckpoint]:
        async with self._engine.connect() as connection:
            result = await connection.stream(select(self._table).order_by(self._table.c.id))
            async for row in result:
                yield _checkpoint(row)
