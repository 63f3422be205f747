"""Notice Global Privacy Control (`Sec-GPC: 1`) from signed-in subjects and have it recorded, once.

Runs inside the authentication middleware (it reads `scope["state"]["principal"]`). The recorder is the
async callable `record_gpc(subject_external_id)` in the lifespan state (the consent service, which is
idempotent). It runs in a background task so the response never waits for it; its errors are logged,
never raised (a subject an import holds is waited for only a moment: a later request records it). A
small bounded memo keeps a process from calling it on every request of the same subject; a failed call
is forgotten, so a later request tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from dsr_gateway.domain.errors import HeldTooLong
from dsr_gateway.domain.principal import Principal, PrincipalKind

logger = logging.getLogger("dsr_gateway.http.gpc")

RECORDER_STATE = "record_gpc"
RecordGpc = Callable[[str], Awaitable[None]]


class GpcMiddleware:
    def __init__(self, app: ASGIApp, memo_size: int = 10_000) -> None:
        self.app = app
        self._memo: OrderedDict[str, None] = OrderedDict()
        self._memo_size = memo_size
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subject = self._gpc_subject(scope)
        await self.app(scope, receive, send)
        if subject is None or subject in self._memo:
            return
        recorder: RecordGpc | None = scope.get("state", {}).get(RECORDER_STATE)
        if recorder is None:
            return
        self._remember(subject)
        task = asyncio.create_task(self._record(recorder, subject))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the recordings in flight (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def _gpc_subject(scope: Scope) -> str | None:
        if scope["type"] != "http":
            return None
        if dict(scope["headers"]).get(b"sec-gpc", b"").strip() != b"1":
            return None
        principal = scope.get("state", {}).get("principal")
        if not isinstance(principal, Principal) or principal.kind is not PrincipalKind.SUBJECT:
            return None
        return principal.id

    def _remember(self, subject: str) -> None:
        self._memo[subject] = None
        self._memo.move_to_end(subject)
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)

    async def _record(self, recorder: RecordGpc, subject: str) -> None:
        try:
            await recorder(subject)
        except HeldTooLong:  # an import holds the subject: expected, no traceback
            self._memo.pop(subject, None)
            logger.warning(
                "a Global Privacy Control signal waited too long to be recorded; a later one retries"
            )
        except Exception:
            self._memo.pop(subject, None)
            logger.exception("recording a Global Privacy Control signal failed; a later request retries")
