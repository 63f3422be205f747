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

from dsr_gateway.connectors.events import InProcessEventBus

logger = logging.getLogger("dsr_gateway.events")
PREFIX = "dsr_"


class PostgresEventBus:
    """Live events are best effort: a database outage delays or drops them, never fails a write.

    Connections are made on first use and made again after a failure, re-listening every channel.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options  # asyncpg.connect() arguments (connectors/pg_connect.py)
        self._local = InProcessEventBus()
        self._listener: Any = None
        self._publisher: Any = None
        self._channels: set[str] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._ensure_listener()
        except (OSError, asyncpg.PostgresError, TimeoutError):
            logger.warning(
                "event bus: PostgreSQL does not answer yet; live events wait for it", exc_info=True
            )

    async def close(self) -> None:
        for connection in (self._listener, self._publisher):
            if connection is not None and not connection.is_closed():
                await connection.close()
        self._listener = self._publisher = None

    async def publish(self, channel: str, payload: dict[str, object]) -> None:
        async with self._lock:
            try:
                if self._publisher is None or self._publisher.is_closed():
                    self._publisher = await asyncpg.connect(**self._options, timeout=5)
                await self._publisher.execute(
                    "SELECT pg_notify($1, $2)", PREFIX + channel, json.dumps(payload)
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                logger.warning("event bus: could not publish on %s; subscribers miss this event", channel)
                self._publisher = None
                return
        # A listener lost since the last publish is made again, so later events arrive.
        try:
            await self._ensure_listener()
        except (OSError, asyncpg.PostgresError, TimeoutError):
            logger.warning("event bus: the listening connection is down; retrying on the next event")

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, object]]:
        self._channels.add(channel)
        try:
            await self._ensure_listener(channel)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            logger.warning("event bus: cannot listen on %s yet; retrying on the next event", channel)
        async for payload in self._local.subscribe(channel):
            yield payload

    async def _ensure_listener(self, channel: str | None = None) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = await asyncpg.connect(**self._options, timeout=5)
            for known in sorted(self._channels):
                await self._listener.add_listener(PREFIX + known, self._deliver)
        elif channel is not None:
            await self._listener.add_listener(PREFIX + channel, self._deliver)

    def _deliver(self, _connection: Any, _pid: int, name: str, raw: str) -> None:
        channel = name.removeprefix(PREFIX)
        try:
            payload = json.loads(raw)
        except ValueError:
            logger.warning("event bus: ignored a malformed notification on %s", channel)
            return
        asyncio.get_running_loop().create_task(self._local.publish(channel, payload))
