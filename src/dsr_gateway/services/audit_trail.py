"""Reading the audit trail (who did what to consents or a request) and recording who read personal data.

Recording costs one INSERT per GraphQL operation (every subject and request the operation read, in one
multi-row statement) after the operation ran. The consentCheck hot path does not wait for a write: its
reads are queued to `AccessBatcher`, which writes them in batches in the background (see docs/audit.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from dsr_gateway.domain.access import require_staff
from dsr_gateway.domain.errors import PermissionDenied, ValidationFailed
from dsr_gateway.domain.identifiers import parse_id
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.services.accountability_ports import AuditTrailStore, DataAccess, TrailEntry
from dsr_gateway.services.ports import Clock

logger = logging.getLogger("dsr_gateway.audit_trail")
DEFAULT_PAGE = 50
MAX_PAGE = 200
RECORDED_KINDS = frozenset({PrincipalKind.STAFF, PrincipalKind.API_CLIENT})
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AccessNote:
    """What a resolver read: a field, about a subject and/or a request."""

    what: str
    subject_external_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]
    has_next_page: bool
    end_cursor: str | None


def _cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"trail:{event_id}".encode()).decode()


def _before(after: str | None) -> int | None:
    if after is None:
        return None
    try:
        kind, _, number = base64.urlsafe_b64decode(after.encode()).decode().partition(":")
        event_id = parse_id(number)
        if kind != "trail" or event_id is None:
            raise ValueError(kind)
        return event_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed.single(
            "after", "Not a cursor from this list; pass an endCursor you received."
        ) from exc


def _size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.single("first", f"Ask for 1 to {MAX_PAGE} entries.")
    return first


def is_recorded(principal: Principal) -> bool:
    """Staff and API clients are recorded; a subject reading itself, the system and anonymous are not."""
    return principal.kind in RECORDED_KINDS and principal.id is not None


class AuditTrailService:
    def __init__(self, store: AuditTrailStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def trail(
        self,
        principal: Principal,
        subject_external_id: str | None,
        request_id: str | None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[TrailEntry]:
        """Newest first: a subject's consent events, or a request's history (staff)."""
        require_staff(principal)
        if (subject_external_id is None) == (request_id is None):
            raise ValidationFailed.single("subjectId", "Give either subjectId or requestId.")
        size, before = _size(first), _before(after)
        if subject_external_id is not None:
            found = await self._store.consent_trail(subject_external_id, before, size + 1)
        else:
            assert request_id is not None
            found = await self._store.request_trail(request_id, before, size + 1)
        return _page(found, size, lambda e: e.event_id)

    async def accesses(
        self,
        principal: Principal,
        subject_external_id: str | None,
        request_id: str | None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[DataAccess]:
        """Who read this subject's (or request's) personal data, newest first (administrators)."""
        if not principal.is_admin:
            raise PermissionDenied("Only an administrator may read the personal-data access log.")
        size, before = _size(first), _before(after)
        found = await self._store.accesses(subject_external_id, request_id, before, size + 1)
        return _page(found, size, lambda a: a.id or 0)

    async def request_subject(self, request_id: str) -> str | None:
        return (await self._store.request_subject(request_id))[1]

    def accesses_of(
        self, principal: Principal, operation: str, notes: Iterable[AccessNote]
    ) -> list[DataAccess]:
        if not is_recorded(principal):
            return []
        assert principal.id is not None
        now = self._clock()
        unique = dict.fromkeys(notes)
        return [
            DataAccess(
                now,
                principal.kind.value,
                principal.id,
                operation,
                n.what,
                n.subject_external_id,
                n.request_id,
            )
            for n in unique
            if not (n.subject_external_id is not None and principal.is_subject(n.subject_external_id))
        ]

    async def record(self, principal: Principal, operation: str, notes: Iterable[AccessNote]) -> None:
        """One INSERT for everything one operation read (nothing for subjects reading themselves)."""
        await self._store.add_accesses(self.accesses_of(principal, operation, notes))


def _page(found: Sequence[T], size: int, key: Callable[[T], int]) -> Page[T]:
    items = [(_cursor(key(i)), i) for i in found[:size]]
    return Page(items, len(found) > size, items[-1][0] if items else None)


class AccessBatcher:
    """A bounded in-memory queue of reads, written in batches by one background task.

    Used for consentCheck, where a synchronous INSERT per call would halve throughput. Reads queued when
    the process dies are lost (at most `max_delay` seconds' worth); a full queue drops and logs.
    """

    def __init__(
        self,
        store: AuditTrailStore,
        *,
        max_batch: int = 2000,
        max_delay: float = 1.0,
        capacity: int = 200_000,
    ) -> None:
        self._store = store
        self._queue: asyncio.Queue[DataAccess] = asyncio.Queue(capacity)
        self._max_batch = max_batch
        self._max_delay = max_delay
        self.dropped = 0

    def offer(self, accesses: Iterable[DataAccess]) -> None:
        for access in accesses:
            try:
                self._queue.put_nowait(access)
            except asyncio.QueueFull:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    logger.warning("personal-data access queue full: %d reads not recorded", self.dropped)

    async def flush(self) -> int:
        """Write everything queued now; returns how many rows were written."""
        written = 0
        while not self._queue.empty():
            batch = [self._queue.get_nowait() for _ in range(min(self._max_batch, self._queue.qsize()))]
            try:
                await self._store.add_accesses(batch)
                written += len(batch)
            except Exception:
                logger.exception("could not record %d personal-data reads", len(batch))
                return written
        return written

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `max_delay` seconds (or sooner when a batch is full) until `stop`; flush at the end."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._max_delay)
            await self.flush()
        await self.flush()
