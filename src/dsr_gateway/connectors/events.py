"""An in-process event bus: every subscriber of a channel gets every event published after it joined."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

QUEUE_LIMIT = 1000


class InProcessEventBus:
    def __init__(self) -> None:
        self._queues: defaultdict[str, set[asyncio.Queue[dict[str, object]]]] = defaultdict(set)

    async def publish(self, channel: str, payload: dict[str, object]) -> None:
        for queue in list(self._queues.get(channel, ())):
            # A subscriber that stops reading loses events rather than stalling every publisher.
            if queue.qsize() < QUEUE_LIMIT:
                queue.put_nowait(payload)

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, object]]:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._queues[channel].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues[channel].discard(queue)
            if not self._queues[channel]:
                del self._queues[channel]
