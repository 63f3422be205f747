"""An EventBus over PostgreSQL LISTEN/NOTIFY (asyncpg), so events reach subscribers in every process.

One listening connection per process fans notifications out to local subscribers through the in-process
bus; publishing is a `pg_notify` on a second connection. Payloads are small JSON (ids and statuses).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from dsr_gateway.connectors.events import InProcessEventBus

logger = logging.getLogger("dsr_gateway.events")
PREFIX = "dsr_"


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresEventBus:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._local = InProcessEventBus()
        self._listener: Any = None
        self._publisher: Any = None
        self._channels: set[str] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._listener = await asyncpg.connect(self._dsn)
        self._publisher = await asyncpg.connect(self._dsn)

    async def close(self) -> None:
        for connection in (self._listener, self._publisher):
            if connection is not None:
                await connection.close()
        self._listener = self._publisher = None

    async def publish(self, channel: str, payload: dict[str, object]) -> None:
        if self._publisher is None:
            raise RuntimeError("PostgresEventBus.start() was not called")
        async with self._lock:
            await self._publisher.execute("SELECT pg_notify($1, $2)", PREFIX + channel, json.dumps(payload))

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, object]]:
        await self._listen(channel)
        async for payload in self._local.subscribe(channel):
            yield payload

    async def _listen(self, channel: str) -> None:
        if channel in self._channels or self._listener is None:
            return
        self._channels.add(channel)

        def deliver(_connection: Any, _pid: int, _name: str, raw: str) -> None:
            try:
                payload = json.loads(raw)
            except ValueError:
                logger.warning("ignored a malformed notification on %s", channel)
                return
            asyncio.get_running_loop().create_task(self._local.publish(channel, payload))

        await self._listener.add_listener(PREFIX + channel, deliver)
