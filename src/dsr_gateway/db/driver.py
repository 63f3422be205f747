"""Core statements run on the driver: the consent write path's per-statement cost, cut.

A statement is still built with SQLAlchemy Core (once, at import) and compiled by SQLAlchemy (once per
engine and parameter set); on PostgreSQL it then runs with asyncpg on the driver connection that holds the
unit of work's transaction. That skips SQLAlchemy's per-execution machinery (execution context, cursor
and result objects, the greenlet hop), about two thirds of a short statement's client-side cost. Values
go through the compiled statement's own parameter building and bind/result processors, as with
`connection.execute`. Elsewhere (SQLite) the statement runs through `connection.execute` as before.
Rows come back as mappings in both cases.

Not seen by SQLAlchemy: engine events and `echo` miss these statements, and a database error arrives as
asyncpg's exception (the unit of work still rolls back). A connection found dead here is discarded with
the rest of the pool, as SQLAlchemy does for a disconnect it sees (`_guarded`).

Limits, checked: one parameter set per call (a multi-row INSERT goes through `connection.execute`), no
expanding IN (use `= ANY(:array)`), no Python-callable column defaults.

**Deferred writes.** `later` queues a write whose result nobody needs (the consent write's single event,
projection row and message) on the unit of work; `flush_pending` sends the queue as ONE statement (each
write a data-modifying CTE) before COMMIT. The repository that owns a deferred table flushes before it
reads or writes that table again, so the unit of work still reads its own writes; a statement is never
queued twice in one flush (two CTEs updating one row would be undefined in PostgreSQL).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Insert

logger = logging.getLogger("dsr_gateway.db")
T = TypeVar("T")
Row = Mapping[str, Any]
Processor = Callable[[Any], Any] | None
PENDING = "dsr_gateway.driver.pending"  # the session's queue of deferred writes (session.info)
_DRIVER = "dsr_gateway.driver.connection"  # (transaction, connection, asyncpg connection or None)
_PARAMETER = re.compile(r"\$(\d+)")


class _Compiled:
    """One statement compiled for the asyncpg dialect: its text, and how to bind and read values."""

    __slots__ = (
        "_compiled",
        "_defaults",
        "_positions",
        "_processors",
        "columns",
        "parameters",
        "results",
        "text",
    )

    def __init__(self, statement: Any, dialect: Dialect, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.positiontup is None:
            raise ValueError("a driver statement needs the asyncpg dialect's positional parameters")
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("a driver statement cannot expand IN lists: use = ANY(array)")
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
            if not column.default.is_scalar:
                raise ValueError(f"{column} has a Python-callable default: pass its value")
        self._compiled = compiled
        self._positions: list[str] = list(compiled.positiontup)
        self._processors = compiled._bind_processors
        self.text: str = compiled.string
        self.parameters = len(self._positions)
        self.columns: list[str] = [c[0] for c in compiled._result_columns]
        self.results: list[Processor] = [
            c[3]._cached_result_processor(dialect, None) for c in compiled._result_columns
        ]
        # Scalar column defaults of an INSERT are filled in by the execution context; here, by name.
        self._defaults = {
            c.key: c.default.arg for c in [*compiled.insert_prefetch, *compiled.update_prefetch]
        }

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = self._compiled.construct_params(params, _check=False)
        for key, default in self._defaults.items():
            if values.get(key) is None and key not in params:
                values[key] = default
        processors = self._processors
        out = []
        for name in self._positions:
            value = values[name]
            process = processors.get(name)
            out.append(process(value) if process is not None else value)
        return out


class DriverStatement:
    """A Core statement (a SELECT, or a DML with or without RETURNING) for the consent write path."""

    def __init__(self, statement: Any) -> None:
        self._statement = statement
        self._insert = isinstance(statement, Insert)
        self._compiled: dict[tuple[int, tuple[str, ...]], _Compiled] = {}

    def compiled_for(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        """The statement compiled for `dialect` (once; for an INSERT, once per set of keys given)."""
        # An INSERT's column list depends on the keys given; other statements bind by name.
        keys = tuple(params) if self._insert else ()
        key = (id(dialect), keys)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _Compiled(self._statement, dialect, keys)
        return found

    async def run(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Row]:
        """Run in the session's transaction; the rows it returns (none for plain DML)."""
        connection, driver = await _connection(session)
        if driver is None:
            assert connection is not None
            result = await connection.execute(self._statement, dict(params))
            return cast(list[Row], list(result.mappings().all())) if result.returns_rows else []
        compiled = self.compiled_for(_dialect(session, connection), params)
        records = await _guarded(connection, driver, driver.fetch(compiled.text, *compiled.arguments(params)))
        if not any(compiled.results):
            return records  # type: ignore[no-any-return]
        return [
            {
                name: (process(value) if process is not None else value)
                for name, process, value in zip(compiled.columns, compiled.results, record, strict=True)
            }
            for record in records
        ]

    async def later(self, session: AsyncSession, params: Mapping[str, Any]) -> None:
        """Queue this write for the session's next `flush_pending` (PostgreSQL); elsewhere run it now."""
        connection, driver = await _connection(session)
        if driver is None or session.in_nested_transaction():
            # Inside a SAVEPOINT a queued write would outlive the savepoint's rollback: run it now.
            await self.run(session, params)
            return
        compiled = self.compiled_for(_dialect(session, connection), params)
        pending: list[tuple[DriverStatement, _Compiled, list[Any]]] = session.info.setdefault(PENDING, [])
        if any(queued is self for queued, _, _ in pending):
            await flush_pending(session)
            pending = session.info.setdefault(PENDING, [])
        pending.append((self, compiled, compiled.arguments(params)))


async def flush_pending(session: AsyncSession) -> None:
    """Send the session's deferred writes, in the order queued, as one statement."""
    pending: list[tuple[DriverStatement, _Compiled, list[Any]]] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    text = _combined(tuple(compiled for _, compiled, _ in pending))
    connection, driver = await _connection(session)
    await _guarded(connection, driver, driver.execute(text, *[v for _, _, values in pending for v in values]))


async def _guarded(connection: AsyncConnection | None, driver: Any, operation: Awaitable[T]) -> T:
    """Run a driver operation; if it finds the connection dead, do what SQLAlchemy does on a disconnect
    it sees itself: discard this connection and every other one pooled before it (a restarted or failed
    over server has closed them all), so the next transaction gets a fresh connection. Without a pre-ping
    (db/engine.py) this is what brings writes back after the database returns."""
    try:
        return await operation
    except Exception:  # asyncpg's own, or the adapter's translation of it (BEGIN)
        # (A driver-only unit of work, db/uow.py, holds no SQLAlchemy connection: it does this itself.)
        if driver.is_closed() and connection is not None:
            logger.warning("the database closed a write connection; discarding the pooled connections")
            await connection.invalidate()
            await connection.engine.dispose(close=False)
        raise


def forget_pending(session: AsyncSession) -> None:
    """Drop the deferred writes of a transaction that is being rolled back."""
    session.info.pop(PENDING, None)


_COMBINED: dict[tuple[int, ...], str] = {}


def _shifted(text: str, offset: int) -> str:
    return _PARAMETER.sub(lambda match: f"${int(match.group(1)) + offset}", text)


def _combined(parts: tuple[_Compiled, ...]) -> str:
    """`WITH w0 AS (<first>), ... <last>`, each part's $n moved past the parameters before it."""
    if len(parts) == 1:
        return parts[0].text
    key = tuple(id(p) for p in parts)
    found = _COMBINED.get(key)
    if found is None:
        texts: list[str] = []
        offset = 0
        for part in parts:
            texts.append(_shifted(part.text, offset))
            offset += part.parameters
        ctes = ", ".join(f"w{i} AS ({t})" for i, t in enumerate(texts[:-1]))
        if len(_COMBINED) > 256:  # queues hold each statement at most once: few shapes in practice
            _COMBINED.clear()
        found = _COMBINED[key] = f"WITH {ctes} {texts[-1]}"
    return found


async def driver_connection(connection: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection, inside that connection's transaction.

    SQLAlchemy's asyncpg adapter begins its transaction at the first statement it runs itself; a COPY or a
    driver statement that comes first begins it the same way, so COMMIT/ROLLBACK through SQLAlchemy end it
    (without this, a first COPY would run in autocommit, outside the unit of work).
    """
    adapter: Any = (await connection.get_raw_connection()).dbapi_connection
    driver = adapter.driver_connection
    if adapter._transaction is None and not adapter.autocommit:
        await _guarded(connection, driver, adapter._start_transaction())
    return driver


def bind_driver(session: AsyncSession, driver: Any) -> None:
    """Make `driver` (an asyncpg connection inside the caller's transaction) the session's connection for
    every driver statement, with no SQLAlchemy connection beside it (DriverUnitOfWork, db/uow.py)."""
    session.info[_DRIVER] = (None, None, driver)


def driver_only(session: AsyncSession) -> bool:
    """Whether the session's unit of work runs on the driver alone (`bind_driver`)."""
    cached = session.info.get(_DRIVER)
    return cached is not None and cached[1] is None


def _dialect(session: AsyncSession, connection: AsyncConnection | None) -> Dialect:
    if connection is not None:
        return connection.dialect
    assert session.bind is not None
    return session.bind.dialect


async def _connection(session: AsyncSession) -> tuple[AsyncConnection | None, Any]:
    """The session's connection and, on PostgreSQL, its asyncpg connection inside the transaction.

    Kept for the session's current transaction (asking the session for its connection costs a greenlet
    hop each time); `driver_connection` begins the transaction when a driver statement comes first.
    """
    cached = session.info.get(_DRIVER)
    nested = session.in_nested_transaction()
    if cached is not None and cached[0] is session.sync_session.get_transaction() and not nested:
        return cached[1], cached[2]
    # Asking the session emits a SAVEPOINT it still owes (begin_nested is lazy): never skipped when nested.
    connection = await session.connection()
    driver = await driver_connection(connection) if connection.dialect.name == "postgresql" else None
    session.info[_DRIVER] = (session.sync_session.get_transaction(), connection, driver)
    return connection, driver
