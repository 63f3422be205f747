"""Bulk writes of the consent ledger on PostgreSQL (the importer's chunks), in the caller's transaction.

- events: ids from ONE `nextval` over `generate_series`, the writing transaction's id read once, the hash
  chains sealed in Python (in order, per subject), then COPY through asyncpg `copy_records_to_table`;
- projection: COPY into a temporary table (dropped at commit), then one
  `INSERT ... SELECT ... ON CONFLICT DO UPDATE`;
- subjects, states and chain heads with `= ANY(array)` (one statement each, whatever the count).
Everything runs on the unit of work's connection, so a failure anywhere rolls the whole import back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from dsr_gateway.db.driver import driver_connection
from dsr_gateway.db.repositories.chain_sealing import CONSENT_SEALER
from dsr_gateway.db.repositories.consent_rows import event_values, record_from_row, recorded
from dsr_gateway.domain.audit_chain import ChainHead
from dsr_gateway.domain.consent import ConsentEvent, ConsentRecord, NewConsentEvent

# Below this many rows the ordinary multi-row statements are as quick (and need no temporary table).
BULK_MIN_ROWS = 200
EVENT_COLUMNS = (
    "id",
    "tx_order",
    "subject_id",
    "purpose_key",
    "topic",
    "channel",
    "action",
    "method",
    "notice_version",
    "origin_app_id",
    "origin_url",
    "origin_user_agent",
    "origin_ip",
    "actor_kind",
    "actor_id",
    "occurred_at",
    "recorded_at",
    "idempotency_key",
    "sequence",
    "prev_hash",
    "hash",
)
STATE_COLUMNS = (
    "subject_id",
    "purpose_key",
    "topic",
    "channel",
    "status",
    "method",
    "notice_version",
    "given_at",
    "updated_at",
    "last_event_id",
)
STATE_TEMP = "consent_state_import"
# The sequence looked up once (OFFSET 0 keeps it out of the per-row expression): per row it cost ~10x.
NEW_IDS = text(
    "SELECT nextval(q.seq) FROM (SELECT CAST(pg_get_serial_sequence('consent_event', 'id') AS regclass) "
    "AS seq OFFSET 0) AS q, generate_series(1, :n) ORDER BY 1"
)
TX_ORDER = text("SELECT pg_current_xact_id()::text::bigint")
HEADS = text(
    "SELECT DISTINCT ON (subject_id) subject_id, sequence, hash FROM consent_event "
    "WHERE subject_id = ANY(:ids) ORDER BY subject_id, sequence DESC"
)
# Built from the constant column names above only (no caller's value reaches the SQL text).
STATES = text(f"SELECT {', '.join(STATE_COLUMNS)} FROM consent_state WHERE subject_id = ANY(:ids)")  # noqa: S608
NEW_SUBJECTS = text(
    "INSERT INTO subject (external_id, created_at) SELECT unnest(CAST(:ids AS text[])), :now "
    "ON CONFLICT (external_id) DO NOTHING"
)
# Locked until commit, in id order (a live write of one of them waits for the import instead of extending
# the chain under it; two importers lock each chunk's subjects in the same order). NO KEY UPDATE, as the
# live writers take: it holds them off but not the foreign-key checks of rows that name a subject (FOR
# KEY SHARE: a receipt, a request), which would otherwise wait for the whole import or deadlock with it.
SUBJECT_IDS = text(
    "SELECT external_id, id FROM subject WHERE external_id = ANY(CAST(:ids AS text[])) "
    "ORDER BY id FOR NO KEY UPDATE"
)
_set = ", ".join(f"{c} = EXCLUDED.{c}" for c in STATE_COLUMNS[4:])
_cols = ", ".join(STATE_COLUMNS)
_upsert = f"INSERT INTO consent_state ({_cols}) SELECT {_cols} FROM {STATE_TEMP} "  # noqa: S608
UPSERT_STATES = text(_upsert + f"ON CONFLICT (subject_id, purpose_key, topic, channel) DO UPDATE SET {_set}")


async def ensure_subjects(
    connection: AsyncConnection, external_ids: Collection[str], now: datetime
) -> dict[str, int]:
    unique = list(dict.fromkeys(external_ids))
    await connection.execute(NEW_SUBJECTS, {"ids": unique, "now": now})
    rows = await connection.execute(SUBJECT_IDS, {"ids": unique})
    return {external_id: subject_id for external_id, subject_id in rows}


async def states(
    connection: AsyncConnection, subject_ids: Collection[int], purposes: Collection[str] | None
) -> dict[int, list[ConsentRecord]]:
    result: dict[int, list[ConsentRecord]] = {s: [] for s in subject_ids}
    wanted = set(purposes) if purposes is not None else None
    for row in await connection.execute(STATES, {"ids": list(subject_ids)}):
        mapping = row._mapping
        if wanted is None or mapping["purpose_key"] in wanted:
            result[mapping["subject_id"]].append(record_from_row(mapping))
    return result


async def append(
    connection: AsyncConnection, events: Sequence[tuple[int, NewConsentEvent]]
) -> list[ConsentEvent]:
    """Seal and COPY the events, in order; return them with their ids (ascending in the given order)."""
    subjects = list(dict.fromkeys(s for s, _ in events))
    heads: dict[object, ChainHead] = {
        s: ChainHead(q, h) for s, q, h in await connection.execute(HEADS, {"ids": subjects})
    }
    ids = list((await connection.execute(NEW_IDS, {"n": len(events)})).scalars())
    tx_order = (await connection.execute(TX_ORDER)).scalar_one()
    rows = [event_values(s, e) for s, e in events]
    sealed = await CONSENT_SEALER.seal_all(_no_reads, rows, heads_or_empty(heads, subjects))
    records = []
    for event_id, values in zip(ids, sealed, strict=True):
        values["id"], values["tx_order"] = event_id, tx_order
        records.append(tuple(values[c] for c in EVENT_COLUMNS))
    driver = await driver_connection(connection)
    await driver.copy_records_to_table("consent_event", records=records, columns=EVENT_COLUMNS)
    return [recorded(i, s, e) for i, (s, e) in zip(ids, events, strict=True)]


def heads_or_empty(heads: dict[object, ChainHead], subjects: Sequence[int]) -> dict[object, ChainHead | None]:
    """Every chain of the batch as known: its head, or None for a chain with no event yet."""
    return {s: heads.get(s) for s in subjects}


async def _no_reads(statement: Any, parameters: Any = None) -> Any:
    raise AssertionError("every chain head is known before sealing")


async def save_states(
    connection: AsyncConnection, values: Sequence[dict[str, Any]], temp_ready: bool
) -> None:
    """COPY the rows into the temporary table, upsert them into the projection, empty the table."""
    if not temp_ready:
        await connection.execute(
            text(f"CREATE TEMPORARY TABLE {STATE_TEMP} (LIKE consent_state) ON COMMIT DROP")
        )
    driver = await driver_connection(connection)
    await driver.copy_records_to_table(
        STATE_TEMP, records=[tuple(v[c] for c in STATE_COLUMNS) for v in values], columns=STATE_COLUMNS
    )
    await connection.execute(UPSERT_STATES)
    await connection.execute(text(f"TRUNCATE {STATE_TEMP}"))
