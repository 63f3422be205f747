"""A few to a few hundred rows of the consent ledger at once on PostgreSQL (a group-commit batch of
setConsents calls, a withdrawal of several scopes), each step ONE statement on the driver with arrays.

The multi-row statements through SQLAlchemy built and processed every row's parameters in Python (for a
batch of 50 writes about a tenth of the server's CPU) and read the chain heads in a statement of their
own. Here the values go to asyncpg as one array per column (`unnest`), the subjects' chain heads come
with their states, and the new events' ids come back keyed by (subject, sequence), their chain position.
Only on PostgreSQL; the statements run in the unit of work's transaction (db/driver.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, text

from dsr_gateway.db.driver import DriverStatement
from dsr_gateway.db.repositories import consent_bulk
from dsr_gateway.db.repositories.consent_rows import record_from_row
from dsr_gateway.db.tables.consent import ConsentEventRow, ConsentStateRow
from dsr_gateway.domain.audit_chain import ChainHead
from dsr_gateway.domain.consent import ConsentRecord

EVENTS = ConsentEventRow.__table__  # type: ignore[attr-defined]
STATES = ConsentStateRow.__table__  # type: ignore[attr-defined]


def _array_type(column: Any) -> str:
    """The PostgreSQL array type a column's values are sent as (strings as text[]: a CAST to varchar(n)[]
    would cut a value short where the INSERT refuses it)."""
    kind = getattr(column.type, "impl", column.type)
    if isinstance(kind, DateTime):
        return "timestamptz[]"
    if isinstance(kind, BigInteger):
        return "bigint[]"
    if isinstance(kind, Integer):
        return "integer[]"
    if isinstance(kind, String):
        return "text[]"
    raise TypeError(f"no array type for {column}")


# (column, its array type), in the bulk path's column order: the arrays given to `unnest`. The events' id
# and transaction order are the database's here.
EVENT_ARRAYS = tuple(
    (name, _array_type(EVENTS.c[name]))
    for name in consent_bulk.EVENT_COLUMNS
    if name not in ("id", "tx_order")
)
STATE_ARRAYS = tuple((name, _array_type(STATES.c[name])) for name in consent_bulk.STATE_COLUMNS)
STATE_KEY = consent_bulk.STATE_COLUMNS[:4]  # the projection's primary key


def _unnest(arrays: tuple[tuple[str, str], ...]) -> str:
    """`unnest(CAST(:a AS t[]), ...) WITH ORDINALITY AS u(a, ..., ord)`: built from the constants above."""
    casts = ", ".join(f"CAST(:{name} AS {kind})" for name, kind in arrays)
    names = ", ".join(name for name, _ in arrays)
    return f"unnest({casts}) WITH ORDINALITY AS u({names}, ord)"


_event_names = ", ".join(name for name, _ in EVENT_ARRAYS)
_state_names = ", ".join(name for name, _ in STATE_ARRAYS)
_state_set = ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in STATE_ARRAYS if name not in STATE_KEY)

# Every subject of these that exists, and whether this transaction locked it (false: another holds it).
LOCK_MANY = DriverStatement(
    text(
        "WITH locked AS MATERIALIZED (SELECT id FROM subject WHERE external_id = ANY(CAST(:ids AS text[])) "
        "ORDER BY id FOR NO KEY UPDATE SKIP LOCKED) "
        "SELECT s.external_id, s.id, l.id IS NOT NULL AS locked FROM subject AS s "
        "LEFT JOIN locked AS l ON l.id = s.id WHERE s.external_id = ANY(CAST(:ids AS text[]))"
    )
)
# Every subject once (a row of NULLs when it has no state), each row with the subject's chain head.
LOCKED_STATES = DriverStatement(
    text(
        "SELECT s.id AS subject_id, h.sequence AS head_sequence, h.hash AS head_hash, st.purpose_key, "
        "st.topic, st.channel, st.status, st.method, st.notice_version, st.given_at, st.updated_at, "
        "st.last_event_id FROM unnest(CAST(:ids AS integer[])) AS s(id) "
        "LEFT JOIN LATERAL (SELECT e.sequence, e.hash FROM consent_event AS e WHERE e.subject_id = s.id "
        "ORDER BY e.sequence DESC LIMIT 1) AS h ON true "
        "LEFT JOIN consent_state AS st ON st.subject_id = s.id"
    )
)
HEADS = DriverStatement(consent_bulk.HEADS)
# Rows inserted in the order given (ORDER BY ord), so ids ascend in that order, as with one VALUES list.
INSERT_EVENTS = DriverStatement(
    text(
        f"INSERT INTO consent_event (tx_order, {_event_names}) "  # noqa: S608 (constant names only)
        f"SELECT pg_current_xact_id()::text::bigint, {_event_names} FROM {_unnest(EVENT_ARRAYS)} "
        "ORDER BY ord RETURNING id, subject_id, sequence"
    )
)
UPSERT_STATES = DriverStatement(
    text(
        f"INSERT INTO consent_state ({_state_names}) "  # noqa: S608 (constant names only)
        f"SELECT {_state_names} FROM {_unnest(STATE_ARRAYS)} ORDER BY ord "
        f"ON CONFLICT ({', '.join(STATE_KEY)}) DO UPDATE SET {_state_set}"
    )
)


# The events recorded under each (subject, idempotency key) pair; `idempotency_key IS NOT NULL` lets the
# join use the partial index of keyed events (a join condition alone cannot imply its predicate).
_event_columns = ", ".join(f"e.{c.name}" for c in EVENTS.c)
EVENTS_FOR_KEYS = DriverStatement(
    text(
        f"SELECT {_event_columns} FROM unnest(CAST(:subjects AS integer[]), CAST(:keys AS text[])) "  # noqa: S608
        "AS k(subject_id, idempotency_key) JOIN consent_event AS e ON e.subject_id = k.subject_id "
        "AND e.idempotency_key = k.idempotency_key WHERE e.idempotency_key IS NOT NULL ORDER BY e.id"
    ).columns(*EVENTS.c)
)


async def events_for_keys(session: Any, pairs: Sequence[tuple[int, str]]) -> list[Mapping[str, Any]]:
    """The event rows of these (subject, key) pairs, in ledger order."""
    return await EVENTS_FOR_KEYS.run(
        session, {"subjects": [s for s, _ in pairs], "keys": [k for _, k in pairs]}
    )


def _columns(rows: Sequence[Mapping[str, Any]], arrays: tuple[tuple[str, str], ...]) -> dict[str, list[Any]]:
    columns = {name: [row[name] for row in rows] for name, _ in arrays}
    for name, kind in arrays:
        # What the UtcDateTime column type refuses on its own statements (asyncpg would take a naive time
        # as the server's local time).
        if kind == "timestamptz[]" and any(v is not None and v.tzinfo is None for v in columns[name]):
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
    return columns


async def lock_many(session: Any, external_ids: Collection[str]) -> tuple[dict[str, int], set[str]]:
    rows = await LOCK_MANY.run(session, {"ids": list(dict.fromkeys(external_ids))})
    locked = {r["external_id"]: r["id"] for r in rows if r["locked"]}
    return locked, {r["external_id"] for r in rows if not r["locked"]}


async def locked_states(
    session: Any, subject_ids: Collection[int]
) -> tuple[dict[int, list[ConsentRecord]], dict[int, ChainHead | None]]:
    """Each subject's records and chain head (None: no event yet)."""
    states: dict[int, list[ConsentRecord]] = {}
    heads: dict[int, ChainHead | None] = {}
    for row in await LOCKED_STATES.run(session, {"ids": list(subject_ids)}):
        subject_id = row["subject_id"]
        if subject_id not in heads:
            sequence = row["head_sequence"]
            heads[subject_id] = ChainHead(sequence, row["head_hash"]) if sequence is not None else None
            states[subject_id] = []
        if row["purpose_key"] is not None:
            states[subject_id].append(record_from_row(row))
    return states, heads


async def heads(session: Any, subject_ids: Collection[int]) -> dict[int, ChainHead | None]:
    """Each subject's chain head (None: no event yet)."""
    found: dict[int, ChainHead | None] = dict.fromkeys(subject_ids)
    for row in await HEADS.run(session, {"ids": list(found)}):
        found[row["subject_id"]] = ChainHead(row["sequence"], row["hash"])
    return found


async def insert_events(session: Any, sealed: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert sealed event rows; their ids, in the order given."""
    rows = await INSERT_EVENTS.run(session, _columns(sealed, EVENT_ARRAYS))
    ids = {(r["subject_id"], r["sequence"]): r["id"] for r in rows}
    return [ids[(row["subject_id"], row["sequence"])] for row in sealed]


async def upsert_states(session: Any, values: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace projection rows (each scope at most once)."""
    await UPSERT_STATES.run(session, _columns(values, STATE_ARRAYS))
