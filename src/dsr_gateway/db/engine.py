"""Engine and session factories. Built by the composition root; nothing here is global."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 10_000
# hide_parameters on every engine: a failed statement's error (logged, and shown as a fulfilment step's
# lastError) would otherwise quote its parameters, e.g. a subject's id or email address.


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """The engine for `url`; on SQLite every transaction takes the write lock at BEGIN (hot reads use
    db/read_engine.py)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # aiosqlite's own BEGIN handling defers locks; take the write lock at BEGIN so that two
        # writers queue on busy_timeout instead of failing halfway with "database is locked".
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    # A fixed pool, as for reads (db/read_engine.py): overflow connections were closed on return, so under
    # a burst writers paid new connections. No pre-ping: on asyncpg it is three round trips (BEGIN, a
    # query, ROLLBACK) per checkout; a connection found dead fails its one transaction, SQLAlchemy then
    # invalidates the pool, and connections are recycled hourly.
    return create_async_engine(
        url, echo=echo, hide_parameters=True, pool_size=pool_size, max_overflow=0, pool_recycle=3600
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level lets SQLAlchemy's "begin" event emit the BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
