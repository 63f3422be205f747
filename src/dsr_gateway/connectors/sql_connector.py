"""A SQL data system (any SQLAlchemy async URL), reached with SQLAlchemy Core on its own engine.

Only the tables and columns declared in the systems file are touched. Access pages through each table by
primary key (keyset pagination: memory stays flat, no server-side cursor needed); erasure, rectification and
consent changes run in one transaction per system and are idempotent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    TableClause,
    bindparam,
    column,
    delete,
    false,
    func,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dsr_gateway.connectors.erasure_values import HASH_PREFIX, MASK_PLACEHOLDER, hash_value, mask_value
from dsr_gateway.connectors.systems_config import ErasureKind, SqlSystem, field_category
from dsr_gateway.services.fulfilment_ports import (
    ConsentChange,
    ConsentNotification,
    ErasureAction,
    ErasureResult,
    FieldErasure,
    FieldRectification,
    LegalHold,
    PermanentConnectorError,
    RecordBatch,
    RectifyOutcome,
    RectifyResult,
    RetryableConnectorError,
    StepRef,
    SubjectIdentifiers,
)

RETRYABLE_HINTS = ("locked", "busy", "connection", "timeout", "could not connect", "terminat", "deadlock")
OLD_VALUES_SHOWN = 10


def make_system_engine(url: str) -> AsyncEngine:
    """An engine for a business database; unlike the gateway's, it changes no database settings."""
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 10}, hide_parameters=True)
    return create_async_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True, hide_parameters=True)


class SqlConnector:
    def __init__(
        self, name: str, config: SqlSystem, engine: AsyncEngine, hash_key: bytes, *, owns_engine: bool = True
    ) -> None:
        self._name = name
        self._config = config
        self._engine = engine
        self._hash_key = hash_key
        self._owns_engine = owns_engine
        self._tables = {key: _table_clause(key, t) for key, t in config.tables.items()}
        self._children: dict[str, list[str]] = {key: [] for key in config.tables}
        for key, t in config.tables.items():
            if t.parent is not None:
                self._children[t.parent].append(key)
        # Children before parents: deleting a parent row first would break (or cascade through) the FK.
        self._deepest_first = sorted(config.tables, key=self._depth, reverse=True)

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    # -- access -----------------------------------------------------------------------------------------

    async def access(
        self, subject: SubjectIdentifiers, step: StepRef | None = None
    ) -> AsyncIterator[RecordBatch]:
        batch_size = self._config.batch_size
        for key, declared in self._config.tables.items():
            t = self._tables[key]
            pk = t.c[declared.primary_key]
            fields = tuple(declared.fields)
            last: Any = None
            while True:
                query = (
                    select(pk, *(t.c[f] for f in fields))
                    .where(self._subject_filter(key, subject))
                    .order_by(pk)
                    .limit(batch_size)
                )
                if last is not None:
                    query = query.where(pk > last)
                rows = await self._read(query)
                if not rows:
                    break
                yield RecordBatch(self._name, key, fields, tuple(tuple(r[1:]) for r in rows))
                if len(rows) < batch_size:
                    break
                last = rows[-1][0]

    async def _read(self, query: Any) -> list[Any]:
        try:
            async with self._engine.connect() as connection:
                return list((await connection.execute(query)).all())
        except (SQLAlchemyError, OSError) as exc:
            raise self._classify(exc) from exc

    # -- rectification ----------------------------------------------------------------------------------

    async def rectify(
        self, subject: SubjectIdentifiers, changes: Mapping[str, object], step: StepRef | None = None
    ) -> RectifyResult:
        results: list[FieldRectification] = []
        held_somewhere = {f for t in self._config.tables.values() for f in t.fields}
        for field_name, new in changes.items():
            if field_name not in held_somewhere:
                results.append(
                    FieldRectification(self._name, None, field_name, RectifyOutcome.NOT_HELD, new_value=new)
                )
        try:
            async with self._engine.begin() as connection:
                for key in self._deepest_first:
                    declared = self._config.tables[key]
                    for field_name, new in changes.items():
                        if field_name in declared.fields:
                            results.append(
                                await self._rectify_field(connection, subject, key, field_name, new)
                            )
        except (SQLAlchemyError, OSError) as exc:
            raise self._classify(exc) from exc
        return RectifyResult(self._name, tuple(results))

    async def _rectify_field(
        self, connection: AsyncConnection, subject: SubjectIdentifiers, key: str, field_name: str, new: object
    ) -> FieldRectification:
        declared = self._config.tables[key].fields[field_name]
        base = FieldRectification(
            self._name,
            key,
            field_name,
            RectifyOutcome.NOT_ALLOWED,
            new_value=new,
            sensitive=declared.sensitive,
        )
        if not declared.rectify:
            return base
        t = self._tables[key]
        where = self._subject_filter(key, subject)
        old = (
            await connection.execute(select(t.c[field_name]).where(where).distinct().limit(OLD_VALUES_SHOWN))
        ).scalars()
        old_values = tuple(old)
        result = await connection.execute(update(t).where(where).values({field_name: new}))
        rows = result.rowcount
        outcome = RectifyOutcome.APPLIED if rows else RectifyOutcome.NOT_HELD
        return FieldRectification(
            self._name, key, field_name, outcome, rows, old_values, new, declared.sensitive
        )

    # -- erasure ----------------------------------------------------------------------------------------

    async def erase(
        self, subject: SubjectIdentifiers, holds: Sequence[LegalHold], step: StepRef | None = None
    ) -> ErasureResult:
        held = {h.category: h.reason for h in holds}
        deletable = {key: self._can_delete(key, held) for key in self._config.tables}
        items: list[FieldErasure] = []
        try:
            async with self._engine.begin() as connection:
                for key in self._deepest_first:
                    if deletable[key] is None:
                        t = self._tables[key]
                        result = await connection.execute(delete(t).where(self._subject_filter(key, subject)))
                        rows = result.rowcount
                        items.append(FieldErasure(key, None, ErasureAction.DELETED, rows))
                    else:
                        items.extend(await self._erase_fields(connection, subject, key, held, deletable[key]))
        except (SQLAlchemyError, OSError) as exc:
            raise self._classify(exc) from exc
        return ErasureResult(self._name, tuple(items))

    def _can_delete(self, key: str, held: Mapping[str, str]) -> str | None:
        """None when the subject's rows of `key` may be deleted, else why they are kept."""
        declared = self._config.tables[key]
        if not any(f.erasure is ErasureKind.DELETE_ROW for f in declared.fields.values()):
            return "no field asks to delete the row"
        for name, f in declared.fields.items():
            category = field_category(self._config, declared, f)
            if category in held:
                return f"the row is kept: {name} is under a legal hold on {category} ({held[category]})"
        for child in self._children[key]:
            if self._can_delete(child, held) is not None:
                return f"the row is kept: rows of {child} refer to it and are kept"
        return None

    async def _erase_fields(
        self,
        connection: AsyncConnection,
        subject: SubjectIdentifiers,
        key: str,
        held: Mapping[str, str],
        row_kept_because: str | None,
    ) -> list[FieldErasure]:
        declared = self._config.tables[key]
        t = self._tables[key]
        pk = t.c[declared.primary_key]
        items: list[FieldErasure] = []
        constant: dict[str, object] = {}
        per_row: dict[str, tuple[ErasureKind, str]] = {}
        for name, f in declared.fields.items():
            category = field_category(self._config, declared, f)
            if category in held:
                reason = f"legal hold on {category}: {held[category]}"
                items.append(FieldErasure(key, name, ErasureAction.KEPT, category=category, reason=reason))
            elif f.erasure is None:
                reason = "no erasure action is declared for this field"
                items.append(FieldErasure(key, name, ErasureAction.KEPT, category=category, reason=reason))
            elif f.erasure is ErasureKind.DELETE_ROW:
                items.append(
                    FieldErasure(key, name, ErasureAction.KEPT, category=category, reason=row_kept_because)
                )
            elif f.erasure is ErasureKind.NULL:
                constant[name] = None
            elif f.erasure is ErasureKind.MASK and not MASK_PLACEHOLDER.search(f.mask):
                constant[name] = f.mask
            else:
                per_row[name] = (f.erasure, f.mask)
        rows = 0
        last: Any = None
        per_row_names = list(per_row)
        while constant or per_row:
            query = select(pk, *(t.c[n] for n in per_row_names)).where(self._subject_filter(key, subject))
            if last is not None:
                query = query.where(pk > last)
            batch = (await connection.execute(query.order_by(pk).limit(self._config.batch_size))).all()
            if not batch:
                break
            rows += len(batch)
            last = batch[-1][0]
            keys = [r[0] for r in batch]
            for position, name in enumerate(per_row_names, start=1):
                kind, pattern = per_row[name]
                changed = [
                    {"_pk": r[0], "_value": self._erased_value(kind, pattern, r[position])}
                    for r in batch
                    if r[position] is not None and not str(r[position]).startswith(HASH_PREFIX)
                ]
                if changed:
                    statement = update(t).where(pk == bindparam("_pk")).values({name: bindparam("_value")})
                    await connection.execute(statement, changed)
            if constant:
                await connection.execute(update(t).where(pk.in_(keys)).values(constant))
        for name, f in declared.fields.items():
            if name in constant or name in per_row:
                action = {
                    ErasureKind.NULL: ErasureAction.NULLED,
                    ErasureKind.MASK: ErasureAction.MASKED,
                    ErasureKind.HASH: ErasureAction.HASHED,
                }[f.erasure]  # type: ignore[index]
                category = field_category(self._config, declared, f)
                items.append(FieldErasure(key, name, action, rows, category=category))
        return items

    def _erased_value(self, kind: ErasureKind, pattern: str, value: object) -> str:
        if kind is ErasureKind.HASH:
            return hash_value(self._hash_key, str(value))
        return mask_value(pattern, str(value))

    # -- consent ----------------------------------------------------------------------------------------

    async def notify_consent_change(
        self,
        subject: SubjectIdentifiers,
        purposes: Sequence[str],
        change: ConsentChange,
        step: StepRef | None = None,
    ) -> ConsentNotification:
        granted = change is ConsentChange.GRANTED
        touched: list[str] = []
        try:
            async with self._engine.begin() as connection:
                for key, declared in self._config.tables.items():
                    columns = {declared.consent[p] for p in purposes if p in declared.consent}
                    if columns:
                        where = self._subject_filter(key, subject)
                        await connection.execute(
                            update(self._tables[key]).where(where).values(dict.fromkeys(columns, granted))
                        )
                        touched.append(key)
        except (SQLAlchemyError, OSError) as exc:
            raise self._classify(exc) from exc
        detail = (
            f"updated {', '.join(touched)}" if touched else "no consent column is declared for these purposes"
        )
        return ConsentNotification(self._name, tuple(purposes), change, bool(touched), detail)

    # -- helpers ----------------------------------------------------------------------------------------

    def _depth(self, key: str) -> int:
        depth, parent = 0, self._config.tables[key].parent
        while parent is not None:
            depth, parent = depth + 1, self._config.tables[parent].parent
        return depth

    def _subject_filter(self, key: str, subject: SubjectIdentifiers) -> ColumnElement[bool]:
        declared = self._config.tables[key]
        t = self._tables[key]
        if declared.identifiers is not None:
            conditions: list[ColumnElement[bool]] = []
            if declared.identifiers.external_id:
                conditions.append(t.c[declared.identifiers.external_id] == subject.external_id)
            if declared.identifiers.email and subject.email:
                conditions.append(func.lower(t.c[declared.identifiers.email]) == subject.email.lower())
            return or_(*conditions) if conditions else false()
        assert declared.parent is not None
        assert declared.foreign_key is not None
        parent = self._tables[declared.parent]
        parents = select(parent.c[declared.parent_key]).where(self._subject_filter(declared.parent, subject))
        return t.c[declared.foreign_key].in_(parents)

    def _classify(self, exc: BaseException) -> RetryableConnectorError | PermanentConnectorError:
        text = str(getattr(exc, "orig", exc) or exc).lower()
        if isinstance(exc, OSError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return RetryableConnectorError(self._name, f"the database is unreachable: {type(exc).__name__}")
        if any(hint in text for hint in RETRYABLE_HINTS):
            return RetryableConnectorError(self._name, f"the database is busy or unreachable: {text[:200]}")
        return PermanentConnectorError(
            self._name, f"the declaration does not match the database: {text[:200]}"
        )


def _table_clause(key: str, declared: Any) -> TableClause:
    names = [declared.primary_key, declared.parent_key, *declared.fields, *declared.consent.values()]
    if declared.identifiers is not None:
        names += [declared.identifiers.external_id, declared.identifiers.email]
    if declared.foreign_key:
        names.append(declared.foreign_key)
    unique = list(dict.fromkeys(n for n in names if n))
    real = declared.table or key
    schema, _, name = real.rpartition(".")
    return table(name, *(column(n) for n in unique), schema=schema or None)
