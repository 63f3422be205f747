"""The importer's chunks: subjects, chained events and projection, in the caller's transaction.

On PostgreSQL (chunks of BULK_MIN_ROWS rows or more) a chunk costs a few statements and two COPYs, and the
chunks are pipelined on the one connection: while chunk K is written, Python seals chunk K+1 (and the
service parses K+2). A chunk goes through
- read: one INSERT ... RETURNING names the subjects it creates; the others are locked until commit (a live
  write of one waits for the import) and only their chain heads and states are read; event ids are
  reserved. Chunk K is not written yet when K+1 is read, so K's subjects continue from
  K's in-memory heads and states (`_Sealed`), never from the database;
- seal: its events sealed with a ChainTemplate (the hashed text of the file's constant columns written
  once) and folded into the projection, in memory;
- write: `COPY consent_event`, scopes with no stored record COPYed into consent_state, the others upserted
  through the temporary table (consent_bulk.save_states).
The connection runs one statement at a time: read(K+1), write(K), read(K+2), write(K+1)... A write's
error is raised by the next `record`, `flush` or the caller's `settle`; the whole transaction rolls back.
Elsewhere (SQLite, small chunks) the ledger's multi-row statements, each chunk written before `record`
returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import driver_connection, flush_pending
from dsr_gateway.db.repositories import consent_bulk
from dsr_gateway.db.repositories.chain_sealing import CONSENT_LAYOUT, CONSENT_SEALER
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.db.repositories.consent_rows import event_values, state_values
from dsr_gateway.domain.audit_chain import GENESIS_HASH, ChainTemplate, event_hash
from dsr_gateway.domain.consent import ConsentRecord, NewConsentEvent
from dsr_gateway.domain.consent_import import ImportFold, ImportRow, TableGrowth

# The hashed columns that differ between the rows of one file (in name order, as `_sealed` gives them);
# the others are the file's constants.
VARYING = (
    "action",
    "channel",
    "notice_version",
    "occurred_at",
    "origin_app_id",
    "purpose_key",
    "sequence",
    "subject_id",
    "topic",
)
# The other hashed columns, the same in every row the template seals (`_constants` reads them).
CONSTANT = (
    "method",
    "origin_url",
    "origin_user_agent",
    "origin_ip",
    "actor_kind",
    "actor_id",
    "recorded_at",
    "idempotency_key",
)
LEDGER_TABLES = ("subject", "consent_event", "consent_state")
CREATE_SUBJECTS = text(
    "INSERT INTO subject (external_id, created_at) SELECT unnest(CAST(:ids AS text[])), :now "
    "ON CONFLICT (external_id) DO NOTHING RETURNING external_id, id"
)
# The planner's row counts before the import (-1: never counted), to tell which statistics it outdates.
PLANNER_ROWS = text(
    "SELECT relname, reltuples FROM pg_class "
    "WHERE oid IN (CAST('subject' AS regclass), CAST('consent_event' AS regclass), "
    "CAST('consent_state' AS regclass))"
)
SEAL_TURN_ROWS = 500  # rows sealed between turns of the chunk being written
# One import at a time on a database (a transaction-scoped advisory lock, released at COMMIT/ROLLBACK).
_IMPORT_LOCK_KEY = "hashtext('dsr_gateway.import-consents')"
TRY_IMPORT_LOCK = text(f"SELECT pg_try_advisory_xact_lock({_IMPORT_LOCK_KEY})")
IMPORT_LOCK = text(f"SELECT pg_advisory_xact_lock({_IMPORT_LOCK_KEY})")
logger = logging.getLogger("dsr_gateway.consent")


@dataclass(slots=True)
class _Sealed:
    """A chunk sealed in memory and not yet written: its COPY rows, the projection rows it changes, and
    where it leaves each of its subjects (the next chunk continues from there)."""

    events: list[tuple[object, ...]]
    new_states: list[tuple[Any, ...]]
    replaced_states: list[dict[str, Any]]
    heads: dict[int, tuple[int, str]]
    states: dict[int, list[ConsentRecord]]


class SqlConsentImport:
    def __init__(self, session: AsyncSession, ledger: SqlConsentLedger) -> None:
        self._session = session
        self._ledger = ledger
        self._postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        self._temp_ready = False  # consent_bulk's temporary projection table exists in this transaction
        self._alone = False  # this transaction holds the imports' lock (PostgreSQL)
        self._template: tuple[tuple[object, ...], ChainTemplate] | None = None
        self._tx_order: int | None = None  # the transaction's id: the same for every chunk
        self._unsent: _Sealed | None = None
        self._writing: asyncio.Task[None] | None = None
        self._planner_rows: dict[str, float] = {}
        self._added = dict.fromkeys(LEDGER_TABLES, 0)

    async def record(self, rows: Sequence[ImportRow], now: datetime) -> None:
        """Subjects, events (in row order, each continuing its subject's chain) and projection. On the bulk
        path the chunk may still be unwritten when this returns: the unit of work flushes before COMMIT."""
        if self._postgres and not self._alone:
            await self._one_import_at_a_time()
        if self._postgres and len(rows) >= consent_bulk.BULK_MIN_ROWS:
            await self._record_bulk(rows, now)
            return
        await self.flush()  # the ledger's reads below see every chunk before
        ledger = self._ledger
        ids = await ledger.ensure_subjects([r.external_id for r in rows], now)
        pairs = [(ids[r.external_id], r.event) for r in rows]
        fold = ImportFold(await ledger.states(set(ids.values()), {e.scope.purpose for _, e in pairs}))
        for event in await ledger.append(pairs):
            fold.add(event)
        new, replaced = fold.changed()
        await ledger.save_states(new + replaced)
        self._count(len(ids), len(pairs), len(new))  # subjects found or created: an upper bound

    async def flush(self) -> None:
        """Every chunk recorded so far is written."""
        await self._wait_for_write()
        if self._unsent is not None:
            chunk, self._unsent = self._unsent, None
            await self._write(await self._session.connection(), chunk)

    async def settle(self) -> None:
        """After a failure: let a write in flight end (its own error no longer matters), so the rollback
        finds the connection free; drop what was not sent."""
        self._unsent = None
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await asyncio.gather(writing, return_exceptions=True)

    def transaction_ended(self) -> None:
        """What belongs to one transaction is forgotten (its id; the temporary table, dropped at its end;
        the imports' lock, released at its end)."""
        self._tx_order = None
        self._temp_ready = False
        self._alone = False

    async def _one_import_at_a_time(self) -> None:
        """Take the imports' lock for this transaction, waiting for an import under way to end: two imports
        lock their subjects chunk by chunk, so two of overlapping subjects at once could deadlock."""
        await self._wait_for_write()
        connection = await self._session.connection()
        if not (await connection.execute(TRY_IMPORT_LOCK)).scalar_one():
            logger.warning("another consent import is running: this one waits for it to finish")
            await connection.execute(IMPORT_LOCK)
        self._alone = True

    def growth(self) -> dict[str, TableGrowth]:
        """Rows this import added per ledger table, beside the planner's count before it."""
        return {t: TableGrowth(self._added[t], self._planner_rows.get(t, -1.0)) for t in LEDGER_TABLES}

    async def analyze(self, tables: Sequence[str]) -> None:
        """Refresh the planner's statistics of these ledger tables; on PostgreSQL side by side, each table
        on a connection of its own (outside this unit of work's transaction)."""
        unknown = set(tables) - set(LEDGER_TABLES)
        if unknown:
            raise ValueError(f"not a ledger table: {sorted(unknown)}")
        engine = self._session.bind
        if not self._postgres or not isinstance(engine, AsyncEngine):
            await self._ledger.analyze(tables)
            return

        async def analyze(table: str) -> None:
            async with engine.connect() as connection:
                await connection.execute(text(f"ANALYZE {table}"))
                await connection.commit()

        await asyncio.gather(*(analyze(table) for table in tables))

    def _count(self, subjects: int, events: int, states: int) -> None:
        self._added["subject"] += subjects
        self._added["consent_event"] += events
        self._added["consent_state"] += states

    async def _wait_for_write(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing

    async def _record_bulk(self, rows: Sequence[ImportRow], now: datetime) -> None:
        await self._wait_for_write()  # the connection is free
        # An earlier small chunk's projection upsert may still be queued (db/driver.py deferred writes):
        # sent now, or the states read below would miss it and the queue would later overwrite a newer row.
        await flush_pending(self._session)
        connection = await self._session.connection()
        if self._tx_order is None:
            self._tx_order = (await connection.execute(consent_bulk.TX_ORDER)).scalar_one()
            self._planner_rows = {name: count for name, count in await connection.execute(PLANNER_ROWS)}
        before = self._unsent  # sealed, not written: its subjects continue from memory
        carried = before.heads if before is not None else {}
        ids, created = await _subjects(connection, [r.external_id for r in rows], now)
        others = [i for e, i in ids.items() if e not in created and i not in carried]
        heads: dict[int, tuple[int, str]] = {}
        stored: dict[int, list[ConsentRecord]] = {}
        if others:
            result = await connection.execute(consent_bulk.HEADS, {"ids": others})
            heads = {subject: (sequence, digest) for subject, sequence, digest in result}
            stored = await consent_bulk.states(connection, others, None)
        if before is not None:
            for subject in ids.values():
                if subject in carried:
                    heads[subject] = carried[subject]
                    stored[subject] = before.states[subject]
        event_ids = list((await connection.execute(consent_bulk.NEW_IDS, {"n": len(rows)})).scalars())
        if before is not None:
            self._unsent = None
            self._writing = asyncio.create_task(self._write(connection, before))
            await asyncio.sleep(0)  # it sends its first statement before the sealing below starts
        fold = ImportFold(stored)
        events: list[tuple[object, ...]] = []
        for n, record in enumerate(self._sealed(rows, ids, heads, event_ids, self._tx_order, fold), 1):
            events.append(record)
            if n % SEAL_TURN_ROWS == 0:
                await asyncio.sleep(0)  # the write in flight sends its next buffer
        new, replaced = fold.changed()
        subjects = set(ids.values())
        self._unsent = _Sealed(
            events,
            [_state_record(s, r) for s, r in new],
            [state_values(s, r) for s, r in replaced],
            {s: heads[s] for s in subjects},
            fold.records_of(subjects),
        )
        self._count(len(created), len(events), len(new))

    async def _write(self, connection: AsyncConnection, chunk: _Sealed) -> None:
        driver = await driver_connection(connection)
        await driver.copy_records_to_table(
            "consent_event", records=chunk.events, columns=consent_bulk.EVENT_COLUMNS
        )
        if chunk.new_states:
            await driver.copy_records_to_table(
                "consent_state", records=chunk.new_states, columns=consent_bulk.STATE_COLUMNS
            )
        if chunk.replaced_states:
            await consent_bulk.save_states(connection, chunk.replaced_states, self._temp_ready)
            self._temp_ready = True

    def _sealed(
        self,
        rows: Sequence[ImportRow],
        ids: dict[str, int],
        heads: dict[int, tuple[int, str]],
        event_ids: list[int],
        tx_order: int,
        fold: ImportFold,
    ) -> Iterator[tuple[object, ...]]:
        """The events' COPY rows, sealed into their chains and folded into the projection, in row order."""
        first = rows[0].event
        template = self._template_for(ids[rows[0].external_id], first)
        origin, actor = first.origin, first.actor
        # The columns outside the template's varying ones, as the template hashed them.
        method, kind, actor_id = first.method.value, actor.kind.value, actor.id
        url, agent, ip, recorded_at = origin.url, origin.user_agent, origin.ip, first.recorded_at
        idempotency_key = first.idempotency_key
        made_for = _constants(first)
        for event_id, row in zip(event_ids, rows, strict=True):
            event, subject = row.event, ids[row.external_id]
            sequence, prev_hash = heads.get(subject, (0, GENESIS_HASH))
            sequence += 1
            scope, app_id = event.scope, event.origin.app_id
            # Enum members' _value_: a plain attribute (`.value` is a descriptor call).
            action, version, occurred_at = event.action._value_, event.notice_version, event.occurred_at
            if template is not None and _constants(event) == made_for:
                digest = template.hash(
                    prev_hash,
                    (
                        action,
                        scope.channel,
                        version,
                        occurred_at,
                        app_id,
                        scope.purpose,
                        sequence,
                        subject,
                        scope.topic,
                    ),
                )
                values: tuple[object, ...] = (method, version, app_id, url, agent, ip, kind, actor_id)
                times: tuple[object, ...] = (occurred_at, recorded_at, idempotency_key)
            else:
                document = {**CONSENT_SEALER.document(event_values(subject, event)), "sequence": sequence}
                digest = event_hash(prev_hash, document, CONSENT_LAYOUT)
                o, a = event.origin, event.actor
                values = (event.method.value, version, app_id, o.url, o.user_agent, o.ip, a.kind.value, a.id)
                times = (occurred_at, event.recorded_at, event.idempotency_key)
            heads[subject] = (sequence, digest)
            fold.add_new(subject, event_id, event)
            yield (
                event_id,
                tx_order,
                subject,
                scope.purpose,
                scope.topic,
                scope.channel,
                action,
                *values,
                *times,
                sequence,
                prev_hash,
                digest,
            )

    def _template_for(self, subject: int, event: NewConsentEvent) -> ChainTemplate | None:
        """The template of the file's constant columns, made from its first event (None when the
        first event of a later chunk differs: those rows are sealed the general way)."""
        if self._template is None:
            values = CONSENT_SEALER.document(event_values(subject, event))
            fixed = {k: v for k, v in values.items() if k not in VARYING}
            if set(fixed) != set(CONSTANT):  # a new hashed column: say here whether it varies
                raise AssertionError(f"consent_event's hashed columns changed: {sorted(fixed)}")
            self._template = _constants(event), ChainTemplate(VARYING, fixed, CONSENT_LAYOUT)
        made_for, template = self._template
        return template if _constants(event) == made_for else None


def _constants(event: NewConsentEvent) -> tuple[object, ...]:
    """The values of the template's constant columns."""
    origin = event.origin
    return (
        event.method,
        event.actor,
        event.recorded_at,
        event.idempotency_key,
        origin.url,
        origin.user_agent,
        origin.ip,
    )


async def _subjects(
    connection: AsyncConnection, external_ids: Sequence[str], now: datetime
) -> tuple[dict[str, int], set[str]]:
    """Ids of these subjects, and which of them this call created."""
    unique = list(dict.fromkeys(external_ids))
    result = await connection.execute(CREATE_SUBJECTS, {"ids": unique, "now": now})
    created: dict[str, int] = {e: i for e, i in result}
    others = [e for e in unique if e not in created]
    ids = dict(created)
    if others:
        found = await connection.execute(consent_bulk.SUBJECT_IDS, {"ids": others})
        ids.update({e: i for e, i in found})
    return ids, set(created)


def _state_record(subject_id: int, record: ConsentRecord) -> tuple[Any, ...]:
    scope = record.scope
    return (
        subject_id,
        scope.purpose,
        scope.topic,
        scope.channel,
        record.status.value,
        record.method.value,
        record.notice_version,
        record.given_at,
        record.updated_at,
        record.last_event_id,
    )
