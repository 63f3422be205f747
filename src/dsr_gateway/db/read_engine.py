"""An engine for hot reads: autocommit connections, so a query is one statement and one round trip.

The write engine wraps every connection in a transaction (BEGIN IMMEDIATE on SQLite, BEGIN on
PostgreSQL); a read of one statement needs neither the extra round trip nor, on SQLite, the write lock.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dsr_gateway.db.engine import SQLITE_BUSY_TIMEOUT_MS, _sqlite_pragmas


def make_read_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # A fixed pool: overflow connections are closed as soon as they are returned, so under a burst
    # every read would pay a new connection (and re-prepare its statements); callers queue instead.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=0, isolation_level="AUTOCOMMIT", hide_parameters=True
    )
