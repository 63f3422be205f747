"""The importer's chunks: subjects, chained events and projection, in the caller's transaction.

On PostgreSQL (chunks of BULK_MIN_ROWS rows or more) a chunk costs a few statements and two COPYs:
- subjects: one INSERT ... RETURNING names the subjects this chunk creates; only the others' chain heads
  and states are read (nobody else can see, so write to, a subject before this transaction commits);
- events: sealed with a ChainTemplate (the hashed text of the file's constant columns written once) and
  folded into the projection WHILE they are streamed to `COPY consent_event`, so PostgreSQL inserts the
  rows as Python seals the next ones;
- projection: scopes with no stored record are COPYed into consent_state; the others are upserted
  through the temporary table (consent_bulk.save_states).
Elsewhere (SQLite, small chunks) the ledger's multi-row statements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import driver_connection, flush_pending
from dsr_gateway.db.repositories import consent_bulk
from dsr_gateway.db.repositories.chain_sealing import CONSENT_LAYOUT, CONSENT_SEALER
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.db.repositories.consent_rows import event_values, recorded, state_values
from dsr_gateway.domain.audit_chain import GENESIS_HASH, ChainTemplate, event_hash
from dsr_gateway.domain.consent import ConsentRecord, NewConsentEvent
from dsr_gateway.domain.consent_import import ImportFold, ImportRow

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


class SqlConsentImport:
    def __init__(self, session: AsyncSession, ledger: SqlConsentLedger) -> None:
        self._session = session
        self._ledger = ledger
        self._postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        self._temp_ready = False  # consent_bulk's temporary projection table exists in this transaction
        self._template: tuple[tuple[object, ...], ChainTemplate] | None = None

    async def record(self, rows: Sequence[ImportRow], now: datetime) -> None:
        """Subjects, events (in row order, each continuing its subject's chain) and projection."""
        # An earlier small chunk's projection upsert may still be queued (db/driver.py deferred writes):
        # sent now, or the COPY below would read states without it and the queue would later overwrite
        # a newer row with it.
        await flush_pending(self._session)
        if self._postgres and len(rows) >= consent_bulk.BULK_MIN_ROWS:
            await self._copy(await self._session.connection(), rows, now)
            return
        ledger = self._ledger
        ids = await ledger.ensure_subjects([r.external_id for r in rows], now)
        pairs = [(ids[r.external_id], r.event) for r in rows]
        fold = ImportFold(await ledger.states(set(ids.values()), {e.scope.purpose for _, e in pairs}))
        for event in await ledger.append(pairs):
            fold.add(event)
        new, replaced = fold.changed()
        await ledger.save_states(new + replaced)

    async def analyze(self) -> None:
        """Refresh the planner's statistics of the ledger tables; on PostgreSQL side by side, each
        table on a connection of its own (outside this unit of work's transaction)."""
        engine = self._session.bind
        if not self._postgres or not isinstance(engine, AsyncEngine):
            await self._ledger.analyze()
            return

        async def analyze(table: str) -> None:
            async with engine.connect() as connection:
                await connection.execute(text(f"ANALYZE {table}"))
                await connection.commit()

        await asyncio.gather(*(analyze(table) for table in LEDGER_TABLES))

    async def _copy(self, connection: AsyncConnection, rows: Sequence[ImportRow], now: datetime) -> None:
        ids, created = await _subjects(connection, [r.external_id for r in rows], now)
        others = [i for e, i in ids.items() if e not in created]
        heads: dict[int, tuple[int, str]] = {}
        stored: dict[int, list[ConsentRecord]] = {}
        if others:
            result = await connection.execute(consent_bulk.HEADS, {"ids": others})
            heads = {subject: (sequence, digest) for subject, sequence, digest in result}
            stored = await consent_bulk.states(connection, others, None)
        event_ids = list((await connection.execute(consent_bulk.NEW_IDS, {"n": len(rows)})).scalars())
        tx_order = (await connection.execute(consent_bulk.TX_ORDER)).scalar_one()
        fold = ImportFold(stored)
        records = self._sealed(rows, ids, heads, event_ids, tx_order, fold)
        driver = await driver_connection(connection)
        await driver.copy_records_to_table(
            "consent_event", records=records, columns=consent_bulk.EVENT_COLUMNS
        )
        new, replaced = fold.changed()
        if new:
            states = [_state_record(s, r) for s, r in new]
            await driver.copy_records_to_table(
                "consent_state", records=states, columns=consent_bulk.STATE_COLUMNS
            )
        if replaced:
            await consent_bulk.save_states(
                connection, [state_values(s, r) for s, r in replaced], self._temp_ready
            )
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
        """The events' COPY rows, sealed and folded one by one as COPY asks for them."""
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
            fold.add(recorded(event_id, subject, event))
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
