"""The consent ledger inside a unit of work: append events, keep the projection, lock the subject.

There is deliberately no method that updates or deletes an event: the ledger is append-only in code.
Every statement is SQLAlchemy Core run on the unit of work's session (no ORM objects on the write path).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import DriverStatement, driver_only, flush_pending
from dsr_gateway.db.repositories import consent_batch, consent_bulk
from dsr_gateway.db.repositories.chain_sealing import CONSENT_SEALER
from dsr_gateway.db.repositories.consent_rows import (
    cached_purpose,
    event_from_row,
    event_values,
    record_from_row,
    recorded,
    state_values,
)
from dsr_gateway.db.repositories.process_caches import caches_for
from dsr_gateway.db.tables.catalogue import NoticePurposeRow, PurposeRow
from dsr_gateway.db.tables.consent import ConsentEventRow, ConsentFollowUpRow, ConsentStateRow
from dsr_gateway.db.tables.subjects import SubjectRow
from dsr_gateway.db.types import UtcDateTime
from dsr_gateway.domain.audit_chain import ChainHead
from dsr_gateway.domain.consent import ConsentEvent, ConsentRecord, NewConsentEvent
from dsr_gateway.domain.consent_feed import FeedPosition
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.services.ports import LedgerEntry, LockedWithCatalogue

EVENTS = ConsentEventRow.__table__  # type: ignore[attr-defined]
STATES = ConsentStateRow.__table__  # type: ignore[attr-defined]
SUBJECTS = SubjectRow.__table__  # type: ignore[attr-defined]
FOLLOWUPS = ConsentFollowUpRow.__table__  # type: ignore[attr-defined]
NOTICE_PURPOSES = NoticePurposeRow.__table__  # type: ignore[attr-defined]
PURPOSES = PurposeRow.__table__  # type: ignore[attr-defined]
PURPOSE_COLUMNS = [c for c in PURPOSES.c if c.name not in ("id", "created_at", "updated_at")]
# Rows per INSERT statement; PostgreSQL takes up to 32767 bound values per statement.
CHUNK = 1000
KEY_PAIRS_PER_STATEMENT = 200
# The writing transaction's id: the changes feed reads only below the oldest transaction still open.
PG_TX_ORDER: Any = literal_column("(pg_current_xact_id()::text::bigint)")
NEXT_EVENT_ID: Any = literal_column("nextval(pg_get_serial_sequence('consent_event', 'id'))", BigInteger)
# The changes feed reads only events of transactions older than every one still open (docs/consent.md),
# leaving out those known to write another database: a transaction id belongs to one database for good,
# so passing one seen open elsewhere is safe whenever it was seen. "Seen" twice over: pg_stat_activity
# copies a backend's database before it reads the id from the backend's slot (a slot freed and taken by
# a backend of this database in between would pair the other database with our id), so the id must also
# be one the same process holds the lock of (pg_locks: every open transaction locks its own id).
PG_SETTLED: Any = literal_column(
    "(SELECT coalesce(min(x::text::bigint), pg_snapshot_xmax(pg_current_snapshot())::text::bigint) "
    "FROM pg_snapshot_xip(pg_current_snapshot()) AS x "
    "WHERE x::text::bigint % 4294967296 NOT IN (SELECT a.backend_xid::text::bigint "
    "FROM pg_stat_activity AS a JOIN pg_locks AS l ON l.pid = a.pid AND l.locktype = 'transactionid' "
    "AND l.transactionid = a.backend_xid AND l.granted "
    "WHERE a.backend_xid IS NOT NULL AND a.datname IS DISTINCT FROM current_database()))"
)


# The write path's statements, built once (building a select or an upsert costs more than running it).
_CATALOGUE = PURPOSES.outerjoin(
    NOTICE_PURPOSES,
    and_(
        NOTICE_PURPOSES.c.purpose_key == PURPOSES.c.key,
        NOTICE_PURPOSES.c.notice_version == bindparam("version"),
    ),
)  # no version asked (NULL): nothing stated
_STATED = NOTICE_PURPOSES.c.purpose_key.isnot(None).label("stated")
PURPOSES_AND_NOTICE = select(*PURPOSE_COLUMNS, _STATED).select_from(_CATALOGUE).order_by(PURPOSES.c.key)
LOCK_SUBJECT = (
    select(SUBJECTS.c.id)
    .where(SUBJECTS.c.external_id == bindparam("external_id"))
    # NO KEY UPDATE: writers of a subject queue here, while foreign-key checks of rows naming it (a
    # receipt, an outbox row: FOR KEY SHARE) need not wait for the write.
    .with_for_update(key_share=True)
)


def _locked_with_catalogue(skip_locked: bool = False) -> Any:
    """The subject's id (NULL: no such subject yet, or with `skip_locked` one another transaction holds:
    then `known` tells them apart) with its row locked, on every row of the purposes and the notice's
    purposes; one row of NULLs beside the subject when there is no purpose."""
    known = exists().where(SUBJECTS.c.external_id == bindparam("external_id")).label("known")
    one = select(literal_column("1").label("one"), *([known] if skip_locked else [])).subquery("one")
    lock = LOCK_SUBJECT.with_for_update(key_share=True, skip_locked=True) if skip_locked else LOCK_SUBJECT
    locked = lock.subquery("locked")
    catalogue = select(*PURPOSE_COLUMNS, _STATED).select_from(_CATALOGUE).subquery("catalogue")
    return (
        select(locked.c.id.label("subject_id"), *catalogue.c, *([one.c.known] if skip_locked else []))
        .select_from(
            one.outerjoin(locked, literal_column("true")).outerjoin(catalogue, literal_column("true"))
        )
        .order_by(catalogue.c.key)
    )


def _states_and_head(reserve_id: bool = False) -> Any:
    """A subject's state rows with its chain head (sequence, hash) on each; one row of NULLs when the
    subject has no state yet. With `reserve_id` (PostgreSQL), also the next event id, taken once."""
    head = (
        select(EVENTS.c.sequence, EVENTS.c.hash)
        .where(EVENTS.c.subject_id == bindparam("subject_id"))
        .order_by(EVENTS.c.sequence.desc())
        .limit(1)
    )
    sid = bindparam("subject_id", type_=Integer).label("sid")
    if reserve_id:  # a volatile function keeps the one-row subquery from being flattened: one call
        one = select(sid, NEXT_EVENT_ID.label("next_id")).subquery("one")
        return select(
            head.with_only_columns(EVENTS.c.sequence).scalar_subquery().label("head_sequence"),
            head.with_only_columns(EVENTS.c.hash).scalar_subquery().label("head_hash"),
            one.c.next_id,
            *STATES.c,
        ).select_from(one.outerjoin(STATES, STATES.c.subject_id == one.c.sid))
    one = select(sid).subquery("one")
    return select(
        head.with_only_columns(EVENTS.c.sequence).scalar_subquery().label("head_sequence"),
        head.with_only_columns(EVENTS.c.hash).scalar_subquery().label("head_hash"),
        *STATES.c,
    ).select_from(one.outerjoin(STATES, STATES.c.subject_id == one.c.sid))


def _upsert_states(insert: Any) -> Any:
    base = insert(STATES)
    return base.on_conflict_do_update(
        index_elements=["subject_id", "purpose_key", "topic", "channel"],
        set_={
            c: base.excluded[c]
            for c in ("status", "method", "notice_version", "given_at", "updated_at", "last_event_id")
        },
    )


STATES_AND_HEAD = _states_and_head()
INSERT_EVENTS = EVENTS.insert().returning(EVENTS.c.id, sort_by_parameter_order=True)
INSERT_EVENTS_PG = INSERT_EVENTS.values(tx_order=PG_TX_ORDER)
UPSERT_STATES_PG = _upsert_states(pg_insert)
UPSERT_STATES_SQLITE = _upsert_states(sqlite_insert)
# The same statements, run on the driver on PostgreSQL (db/driver.py): one row each on the write path.
D_PURPOSES_AND_NOTICE = DriverStatement(PURPOSES_AND_NOTICE)
D_LOCKED_WITH_CATALOGUE = DriverStatement(_locked_with_catalogue())
D_UNLESS_HELD_WITH_CATALOGUE = DriverStatement(_locked_with_catalogue(skip_locked=True))
D_LOCK_SUBJECT = DriverStatement(LOCK_SUBJECT)
D_STATES_AND_HEAD = DriverStatement(STATES_AND_HEAD)
D_STATES_HEAD_AND_ID_PG = DriverStatement(_states_and_head(reserve_id=True))
D_INSERT_EVENT_PG = DriverStatement(INSERT_EVENTS_PG)
D_INSERT_EVENT_WITH_ID_PG = DriverStatement(EVENTS.insert().values(tx_order=PG_TX_ORDER))
D_UPSERT_STATE_PG = DriverStatement(UPSERT_STATES_PG)
D_CREATE_SUBJECT_PG = DriverStatement(
    pg_insert(SUBJECTS).on_conflict_do_nothing(index_elements=["external_id"])
)
# The transaction's lock_timeout (set_config's `true`: this transaction only, as SET LOCAL, which takes no
# parameter; transaction-scoped, so it also holds behind a transaction-pooling PgBouncer).
D_LIMIT_LOCK_WAIT = DriverStatement(
    select(func.set_config(literal("lock_timeout"), bindparam("timeout", type_=String), true()))
)
D_EVENTS_FOR_KEY = DriverStatement(
    select(EVENTS)
    .where(EVENTS.c.subject_id == bindparam("subject_id"), EVENTS.c.idempotency_key == bindparam("key"))
    .order_by(EVENTS.c.id)
)


def ledger_events(external_id: str | None) -> Any:
    """Events with their subject's external id; one subject's when `external_id` is given."""
    query = select(EVENTS, SUBJECTS.c.external_id.label("subject_external_id")).select_from(
        EVENTS.join(SUBJECTS, SUBJECTS.c.id == EVENTS.c.subject_id)
    )
    if external_id is not None:
        query = query.where(SUBJECTS.c.external_id == external_id)
    return query


def feed_query(external_id: str | None, first: int, after: FeedPosition, *, postgres: bool) -> Any:
    """The changes feed: events after `after` in commit order (tx_order, id), at most `first`."""
    position = tuple_(EVENTS.c.tx_order, EVENTS.c.id)
    query = (
        ledger_events(external_id)
        .where(position > tuple_(bindparam("tx", after.tx_order), bindparam("id", after.event_id)))
        .order_by(EVENTS.c.tx_order, EVENTS.c.id)
        .limit(first)
    )
    return query.where(EVENTS.c.tx_order < PG_SETTLED) if postgres else query


def ledger_entries(rows: Iterable[Any]) -> list[LedgerEntry]:
    return [
        LedgerEntry(event_from_row(r._mapping), r.subject_external_id, FeedPosition(r.tx_order, r.id))
        for r in rows
    ]


class SqlConsentLedger:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        # A DriverUnitOfWork (db/uow.py): every statement on the driver, one row at a time.
        self._driver_only = driver_only(session)
        # Chain heads read with a locked subject's states, used by the next `append` of that subject.
        self._heads: dict[int, ChainHead | None] = {}
        # An event id taken with a locked subject's states (PostgreSQL): that subject's next single-event
        # `append` uses it and is then written with the commit's other deferred rows (db/driver.py).
        self._next_ids: dict[int, int] = {}
        self._temp_ready = False  # the bulk projection's temporary table exists in this transaction

    def _bulk(self, rows: int) -> bool:
        return self._postgres and rows >= consent_bulk.BULK_MIN_ROWS and not self._driver_only

    async def _connection(self) -> AsyncConnection:
        # A deferred projection row (`save_states`) is written before the ledger's tables are touched again.
        await flush_pending(self._session)
        return await self._session.connection()

    async def _run(self, statement: Any, params: Any = None) -> Any:
        # Core on the session's connection: the same transaction, without the ORM's per-statement work.
        return await (await self._connection()).execute(statement, params)

    async def _fetch(self, statement: DriverStatement, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        await flush_pending(self._session)
        return await statement.run(self._session, params)

    async def limit_lock_wait(self, seconds: float) -> None:
        """The rest of this transaction waits at most `seconds` for a lock another transaction holds, then
        fails with lock_not_available (the unit of work answers HeldTooLong). PostgreSQL; SQLite's writer
        waits its busy timeout for the database's write lock."""
        if self._postgres and seconds > 0:
            await self._fetch(D_LIMIT_LOCK_WAIT, {"timeout": f"{max(1, round(seconds * 1000))}ms"})

    async def lock_subject(self, external_id: str, now: datetime) -> int:
        """The subject's id, created on first use, its row locked until commit (FOR NO KEY UPDATE).

        Writers of one subject queue here, so events and projection of a subject are written in turn.
        SQLite needs no row lock: its writers hold the database lock from BEGIN IMMEDIATE.
        """
        params = {"external_id": external_id}
        rows = await self._fetch(D_LOCK_SUBJECT, params)
        if not rows:
            if self._postgres:  # one row, on the driver (the only way in a DriverUnitOfWork)
                await D_CREATE_SUBJECT_PG.run(self._session, {"external_id": external_id, "created_at": now})
            else:
                await self.ensure_subjects([external_id], now)
            rows = await self._fetch(D_LOCK_SUBJECT, params)
        return int(rows[0]["id"])

    async def lock_many(self, external_ids: Collection[str]) -> tuple[dict[str, int], set[str]]:
        """Ids of those of these subjects that exist and that no other transaction holds, their rows locked
        until commit (SKIP LOCKED: a batch never waits for another writer; their calls wait on their own),
        and the external ids of those another transaction holds. SQLite's writers are serialised instead:
        none is held."""
        if self._postgres:
            await flush_pending(self._session)
            return await consent_batch.lock_many(self._session, external_ids)
        rows = await self._run(
            select(SUBJECTS.c.external_id, SUBJECTS.c.id)
            .where(SUBJECTS.c.external_id.in_(list(dict.fromkeys(external_ids))))
            .order_by(SUBJECTS.c.id)
        )
        return {r.external_id: r.id for r in rows}, set()

    async def locked_states(self, subject_ids: Collection[int]) -> dict[int, list[ConsentRecord]]:
        """`states` of subjects this transaction has locked (`lock_many`); on PostgreSQL their chain heads
        come in the same statement and are kept for `append`."""
        if not self._postgres:
            return await self.states(subject_ids)
        await flush_pending(self._session)
        states, heads = await consent_batch.locked_states(self._session, subject_ids)
        self._heads.update(heads)
        return states

    async def ensure_subjects(self, external_ids: Collection[str], now: datetime) -> dict[str, int]:
        """Ids of these subjects, creating the missing ones (idempotent under concurrency), their rows
        locked until commit on PostgreSQL (FOR NO KEY UPDATE, in id order: the caller extends their chains,
        and a live write of one of them waits for its commit). SQLite's writers are serialised instead."""
        if self._bulk(len(external_ids)):
            return await consent_bulk.ensure_subjects(await self._connection(), external_ids, now)
        insert = pg_insert if self._postgres else sqlite_insert
        ids: dict[str, int] = {}
        unique = list(dict.fromkeys(external_ids))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            await self._run(
                insert(SUBJECTS)
                .values([{"external_id": e, "created_at": now} for e in chunk])
                .on_conflict_do_nothing(index_elements=["external_id"])
            )
            found = select(SUBJECTS.c.external_id, SUBJECTS.c.id).where(SUBJECTS.c.external_id.in_(chunk))
            if self._postgres:
                found = found.order_by(SUBJECTS.c.id).with_for_update(key_share=True)  # as consent_bulk
            rows = await self._run(found)
            ids.update({r.external_id: r.id for r in rows})
        return ids

    async def lock_with_catalogue(
        self, external_id: str, version: int | None, *, wait: bool = True
    ) -> LockedWithCatalogue:
        """`lock_subject` of an existing subject (None: not created yet, nothing locked; without `wait`
        also when another transaction holds it: `held`) and `purposes_and_notice`, in one statement. The
        lock is taken as the statement runs; anything read after the subject's state must come from a
        later statement (see `states`)."""
        params = {"external_id": external_id, "version": version}
        rows = await self._fetch(D_LOCKED_WITH_CATALOGUE if wait else D_UNLESS_HELD_WITH_CATALOGUE, params)
        first = rows[0]
        subject_id = first["subject_id"]
        rows = [r for r in rows if r["key"] is not None]
        cache = caches.purposes if (caches := caches_for(self._session.bind)) else None
        purposes = [cached_purpose(cache, r) for r in rows]
        keys = {r["key"] for r in rows if r["stated"]} if version is not None else set()
        held = subject_id is None and not wait and bool(first["known"])
        return LockedWithCatalogue(
            int(subject_id) if subject_id is not None else None, purposes, keys or None, held
        )

    async def purposes_and_notice(self, version: int | None) -> tuple[list[Purpose], set[str] | None]:
        """Every purpose (by key) and, for a notice version, the purposes it states (None: no such
        version): one statement, Core on the transaction's connection (no ORM objects)."""
        rows = await self._fetch(D_PURPOSES_AND_NOTICE, {"version": version})
        cache = caches.purposes if (caches := caches_for(self._session.bind)) else None
        purposes = [cached_purpose(cache, r) for r in rows]
        keys = {r["key"] for r in rows if r["stated"]} if version is not None else set()
        # A published notice states at least one purpose: none stated means there is no such version.
        return purposes, (keys or None)

    async def notice_purposes(self, version: int) -> set[str] | None:
        """The purposes a notice version states; None when there is no such version."""
        rows = await self._run(
            select(NOTICE_PURPOSES.c.purpose_key).where(NOTICE_PURPOSES.c.notice_version == version)
        )
        keys = set(rows.scalars())
        return keys or None  # a published notice states at least one purpose

    async def events_for_key(self, subject_id: int, idempotency_key: str) -> list[ConsentEvent]:
        rows = await self._fetch(D_EVENTS_FOR_KEY, {"subject_id": subject_id, "key": idempotency_key})
        return [event_from_row(r) for r in rows]

    async def events_for_keys(
        self, pairs: Collection[tuple[int, str]]
    ) -> dict[tuple[int, str], list[ConsentEvent]]:
        """`events_for_key` of several (subject, key) pairs in one statement (a group-commit batch's keyed
        calls); every pair is in the answer, with no events when its key recorded nothing yet."""
        wanted = list(dict.fromkeys(pairs))
        found: dict[tuple[int, str], list[ConsentEvent]] = {pair: [] for pair in wanted}
        if not wanted:
            return found
        if self._postgres:
            await flush_pending(self._session)
            rows: Iterable[Mapping[str, Any]] = await consent_batch.events_for_keys(self._session, wanted)
        else:
            # An OR of pairs: SQLite answers a row-value IN by scanning the table, each pair by the index
            # (in chunks: SQLite limits an expression's depth).
            rows = []
            for start in range(0, len(wanted), KEY_PAIRS_PER_STATEMENT):
                chunk = wanted[start : start + KEY_PAIRS_PER_STATEMENT]
                keyed = or_(
                    *(and_(EVENTS.c.subject_id == s, EVENTS.c.idempotency_key == k) for s, k in chunk)
                )
                query = (
                    select(EVENTS).where(EVENTS.c.idempotency_key.isnot(None), keyed).order_by(EVENTS.c.id)
                )
                rows.extend((await self._run(query)).mappings())
        for row in rows:
            event = event_from_row(row)
            found[(event.subject_id, event.idempotency_key or "")].append(event)
        return found

    async def states(
        self, subject_ids: Collection[int], purposes: Collection[str] | None = None
    ) -> dict[int, list[ConsentRecord]]:
        if len(subject_ids) == 1 and purposes is None:
            (subject_id,) = subject_ids
            return {subject_id: await self._states_and_head(subject_id)}
        if self._bulk(len(subject_ids)):
            return await consent_bulk.states(await self._connection(), subject_ids, purposes)
        result: dict[int, list[ConsentRecord]] = {s: [] for s in subject_ids}
        ids = list(subject_ids)
        for start in range(0, len(ids), CHUNK):
            condition: ColumnElement[bool] = STATES.c.subject_id.in_(ids[start : start + CHUNK])
            if purposes is not None:
                condition = and_(condition, STATES.c.purpose_key.in_(list(purposes)))
            for row in await self._run(select(STATES).where(condition)):
                result[row.subject_id].append(record_from_row(row._mapping))
        return result

    async def _states_and_head(self, subject_id: int) -> list[ConsentRecord]:
        """One subject's records and, in the same statement, its chain head (kept for `append`).

        Callers read this after locking the subject (`lock_subject`), so the head cannot move before the
        events are appended; the lock itself stays a statement of its own (see docs/consent.md).
        """
        records: list[ConsentRecord] = []
        statement = D_STATES_HEAD_AND_ID_PG if self._postgres else D_STATES_AND_HEAD
        rows = await self._fetch(statement, {"subject_id": subject_id})
        first = rows[0]
        sequence, digest = first["head_sequence"], first["head_hash"]
        self._heads[subject_id] = ChainHead(sequence, digest) if sequence is not None else None
        if self._postgres:
            self._next_ids[subject_id] = int(first["next_id"])
        for row in rows:
            if row["purpose_key"] is not None:
                records.append(record_from_row(row))
        return records

    async def append(self, events: Sequence[tuple[int, NewConsentEvent]]) -> list[ConsentEvent]:
        """Insert events (multi-row statements), in order; return them with their ids."""
        if not events:
            return []
        if len(events) != 1:  # a subject's ids follow its chain: a reserved id is not used after others
            for subject_id, _ in events:
                self._next_ids.pop(subject_id, None)
        if self._bulk(len(events)):
            for subject_id, _ in events:  # the bulk path reads every head itself
                self._heads.pop(subject_id, None)
            return await consent_bulk.append(await self._connection(), events)
        if self._postgres and len(events) == 1:  # one choice: one row, on the driver
            ((subject_id, event),) = events
            known = {subject_id: self._heads.pop(subject_id)} if subject_id in self._heads else {}
            (row,) = await CONSENT_SEALER.seal_all(self._run, [event_values(subject_id, event)], known)
            event_id = self._next_ids.pop(subject_id, None)
            if event_id is None:
                rows = await self._fetch(D_INSERT_EVENT_PG, row)
                return [recorded(rows[0]["id"], subject_id, event)]
            await D_INSERT_EVENT_WITH_ID_PG.later(self._session, {"id": event_id, **row})
            return [recorded(event_id, subject_id, event)]
        if self._postgres:  # a few to a few hundred rows: arrays, one statement (consent_batch.py)
            await flush_pending(self._session)
            known = {s: self._heads.pop(s) for s, _ in events if s in self._heads}
            if missing := {s for s, _ in events} - known.keys():  # not read with their states: read now
                known.update(await consent_batch.heads(self._session, missing))
            values = await CONSENT_SEALER.seal_all(self._run, [event_values(s, e) for s, e in events], known)
            ids = await consent_batch.insert_events(self._session, values)
            return [recorded(i, s, e) for i, (s, e) in zip(ids, events, strict=True)]
        saved: list[ConsentEvent] = []
        for start in range(0, len(events), CHUNK):
            chunk = events[start : start + CHUNK]
            # Each row sealed into its subject's hash chain before the INSERT (docs/audit.md).
            known = {s: self._heads.pop(s) for s, _ in chunk if s in self._heads}
            values = await CONSENT_SEALER.seal_all(self._run, [event_values(s, e) for s, e in chunk], known)
            rows = await self._run(INSERT_EVENTS, values)
            saved.extend(recorded(i, s, e) for i, (s, e) in zip(rows.scalars(), chunk, strict=True))
        return saved

    async def save_states(self, records: Iterable[tuple[int, ConsentRecord]]) -> None:
        """Upsert projection rows (insert, or replace the row of the same scope)."""
        values = [state_values(s, r) for s, r in records]
        if not values:
            return
        if self._bulk(len(values)):
            await consent_bulk.save_states(await self._connection(), values, self._temp_ready)
            self._temp_ready = True
            return
        if self._postgres and len(values) == 1:  # one scope changed: written with the commit's other rows
            await D_UPSERT_STATE_PG.later(self._session, values[0])
            return
        if self._postgres:  # arrays, one statement (consent_batch.py)
            await flush_pending(self._session)
            await consent_batch.upsert_states(self._session, values)
            return
        for start in range(0, len(values), CHUNK):
            await self._run(UPSERT_STATES_SQLITE, values[start : start + CHUNK])

    async def all_events(self, subject_ids: Collection[int]) -> list[ConsentEvent]:
        """Every event of these subjects in ledger order (for checks that refold the history)."""
        rows = await self._run(
            select(EVENTS).where(EVENTS.c.subject_id.in_(list(subject_ids))).order_by(EVENTS.c.id)
        )
        return [event_from_row(r._mapping) for r in rows]

    async def followup_position(self, name: str, now: datetime) -> FeedPosition:
        """Where the feed's follower `name` got to, its row locked until commit: one follower at a time
        (SQLite's writers are serialised anyway). A follower the migrations did not start begins at the
        end of the ledger as it is now: it must not, say, issue a receipt for every change ever recorded."""
        query = (
            select(FOLLOWUPS.c.tx_order, FOLLOWUPS.c.event_id)
            .where(FOLLOWUPS.c.name == name)
            .with_for_update()
        )
        row = (await self._run(query)).first()
        if row is None:
            insert = pg_insert if self._postgres else sqlite_insert
            end = select(
                bindparam("name", name, type_=String),
                func.coalesce(func.max(EVENTS.c.tx_order), 0),
                func.coalesce(func.max(EVENTS.c.id), 0),
                bindparam("now", now, type_=UtcDateTime),
            ).where(true())  # SQLite parses INSERT ... SELECT ... ON CONFLICT only with a WHERE
            statement = insert(FOLLOWUPS).from_select(["name", "tx_order", "event_id", "updated_at"], end)
            await self._run(statement.on_conflict_do_nothing(index_elements=["name"]))
            row = (await self._run(query)).one()
        return FeedPosition(int(row.tx_order), int(row.event_id))

    async def feed(self, first: int, after: FeedPosition) -> list[LedgerEntry]:
        """The changes feed after `after`, read in this unit of work (see `feed_query`)."""
        return ledger_entries(await self._run(feed_query(None, first, after, postgres=self._postgres)))

    async def move_followup(self, name: str, position: FeedPosition, now: datetime) -> None:
        await self._run(
            update(FOLLOWUPS)
            .where(FOLLOWUPS.c.name == name)
            .values(tx_order=position.tx_order, event_id=position.event_id, updated_at=now)
        )

    async def analyze(self, tables: Sequence[str]) -> None:
        """Refresh the planner's statistics of these ledger tables (after a bulk import)."""
        for table in tables:
            await self._run(text(f"ANALYZE {table}"))
