"""asyncpg directly, for the one statement of the hottest read (consentCheck) on PostgreSQL.

SQLAlchemy's connection checkout, execution context and result wrapping cost about as much as the
statement itself on this path (measured: ~110 µs of a ~600 µs request). The statement is still built
with SQLAlchemy Core and compiled once; only its execution goes around it. Connections are made on first
use, so building the reader needs no running loop, and closed with the app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement

# Options of SQLAlchemy's asyncpg dialect that asyncpg itself would take for server settings.
_DIALECT_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback")


def asyncpg_dsn(url: URL) -> str:
    """The libpq-style address asyncpg takes, from a `postgresql+asyncpg://` URL."""
    query = {k: v for k, v in url.query.items() if k not in _DIALECT_OPTIONS}
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class CompiledStatement:
    """A Core statement as asyncpg SQL ($1, $2 ...) with its parameter names in order."""

    def __init__(self, statement: ClauseElement, engine: AsyncEngine) -> None:
        compiled: Any = statement.compile(dialect=engine.dialect)  # an SQLCompiler: positional names
        self.sql = str(compiled)
        self.names: Sequence[str] = tuple(compiled.positiontup or ())
        # Literals the statement binds itself (e.g. the "any topic" value), by parameter name.
        self._fixed = {k: v for k, v in compiled.params.items() if v is not None}

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        fixed = self._fixed
        return [params[name] if name in params else fixed[name] for name in self.names]


async def _json_codecs(connection: asyncpg.Connection) -> None:
    # As SQLAlchemy's dialect does: JSON columns come back decoded.
    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep(_connection: asyncpg.Connection) -> None:
    """Nothing to reset on release: these connections only run single read statements in autocommit.
    (asyncpg's default reset sends a query of its own: a second round trip per read.)"""


class HotReadPool:
    def __init__(self, engine: AsyncEngine, *, size: int) -> None:
        self._dsn = asyncpg_dsn(engine.url)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=1, max_size=self._size, init=_json_codecs, reset=_keep
                )
            return self._pool

    async def fetch(self, statement: CompiledStatement, params: dict[str, Any]) -> list[Any]:
        pool = self._pool or await self._opened()
        async with pool.acquire() as connection:
            rows: list[Any] = await connection.fetch(statement.sql, *statement.arguments(params))
            return rows

    async def aclose(self) -> None:
        async with self._opening:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
