"""asyncpg directly, for the one statement of the hottest read (consentCheck) on PostgreSQL.

SQLAlchemy's connection checkout, execution context and result wrapping cost about as much as the
statement itself on this path (measured: ~110 µs of a ~600 µs request). The statement is still built
with SQLAlchemy Core and compiled once (db/driver.py `DriverStatement`, as for the write path); only its
execution goes around SQLAlchemy. The app opens the pool in its
lifespan (a database that does not answer yet is tried again by the first check) and closes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

logger = logging.getLogger("dsr_gateway.db")
# As long as SQLAlchemy's pool waits for a connection before giving up.
ACQUIRE_TIMEOUT_SECONDS = 30.0


async def _json_codecs(connection: asyncpg.Connection) -> None:
    # As SQLAlchemy's dialect does: JSON columns come back decoded.
    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep(_connection: asyncpg.Connection) -> None:
    """Nothing to reset on release: these connections only run single read statements in autocommit.
    (asyncpg's default reset sends a query of its own: a second round trip per read. asyncpg still
    rolls back a transaction left open before calling this.)"""


class HotReadPool:
    def __init__(self, options: dict[str, Any], *, size: int) -> None:
        self._options = options  # asyncpg.connect() arguments (connectors/pg_connect.py)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    async def open(self) -> None:
        """Connect now (the app's start); if the database does not answer yet, the first check tries
        again, as SQLAlchemy's pools do, and /readyz says so meanwhile."""
        try:
            await self._opened()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            logger.warning("consentCheck pool: PostgreSQL does not answer yet (%s)", type(exc).__name__)

    async def _opened(self) -> asyncpg.Pool:
        async with self._opening:
            if self._closed:
                raise RuntimeError("the consentCheck pool is closed (the app is stopping)")
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    **self._options, min_size=1, max_size=self._size, init=_json_codecs, reset=_keep
                )
            return self._pool

    async def fetch(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        """The rows of one statement (text and positional arguments of a compiled DriverStatement)."""
        pool = self._pool or await self._opened()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            rows: list[Any] = await connection.fetch(sql, *arguments)
            return rows

    async def aclose(self) -> None:
        async with self._opening:
            self._closed = True
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
