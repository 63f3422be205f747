"""Reading the audit trail (who did what to consents or a request) and recording who read personal data.

Recording costs one INSERT per GraphQL operation (every subject and request the operation read, in one
multi-row statement) after the operation ran. The consentCheck hot path does not wait for a write: its
reads are noted in `AccessBatcher` (once per distinct read per window) and written in the background (see
docs/audit.md).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
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
    """consentCheck reads, de-duplicated in memory per window and written by one background task.

    A read is (actor, operation, field, subject). Within a window the same read is kept once, so noting
    a batch of ids costs a set update, not an object per id; at the end of the window (or sooner when
    `max_pending` reads wait) each distinct read becomes one row, dated when the window's first read was
    noted. Rows a failed write could not store are kept for the next write. Memory is bounded: past
    `limit` waiting reads, new ones are dropped and counted (`lost`, logged). Reads noted when the
    process dies are lost (at most one window; a clean shutdown writes them).
    """

    def __init__(
        self,
        store: AuditTrailStore,
        clock: Clock,
        *,
        window: float = 60.0,
        max_pending: int = 500_000,
        limit: int = 2_000_000,
        chunk: int = 5000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._window = window
        self._max_pending = max_pending
        self._limit = limit
        self._chunk = chunk
        self._pending: dict[tuple[str, str, str, str], set[str]] = {}
        self._pending_count = 0
        self._retry: list[DataAccess] = []  # rows a failed write left, dated already
        self._window_started = clock()
        self._full = asyncio.Event()
        self.lost = 0

    def note(
        self, actor_kind: str, actor_id: str, operation: str, what: str, subject_ids: Collection[str]
    ) -> None:
        if self._pending_count + len(self._retry) >= self._limit:
            self._lose(len(subject_ids))
            return
        if not self._pending:
            self._window_started = self._clock()
        key = (actor_kind, actor_id, operation, what)
        bucket = self._pending.get(key)
        if bucket is None:
            bucket = self._pending[key] = set()
        before = len(bucket)
        bucket.update(subject_ids)
        self._pending_count += len(bucket) - before
        if self._pending_count >= self._max_pending:
            self._full.set()  # write now rather than grow

    def _lose(self, count: int) -> None:
        before, self.lost = self.lost, self.lost + count
        if before == 0 or before // 100_000 != self.lost // 100_000:
            logger.error(
                "personal-data access log: %d reads not recorded so far (the database is not keeping up)",
                self.lost,
            )

    async def flush(self) -> int:
        """Write every distinct read noted so far (and rows an earlier failure left); returns how many
        rows were written."""
        pending, started = self._pending, self._window_started
        self._pending, self._pending_count = {}, 0
        self._full.clear()
        rows = itertools.chain(
            self._retry,
            (
                DataAccess(started, kind, actor, operation, what, subject_id, None)
                for (kind, actor, operation, what), subject_ids in pending.items()
                for subject_id in subject_ids
            ),
        )
        self._retry = []
        written = 0
        while batch := list(itertools.islice(rows, self._chunk)):
            try:
                await self._store.add_accesses(batch)
            except Exception:
                left = batch + list(rows)
                room = max(0, self._limit - self._pending_count)
                self._retry = left[:room]
                if len(left) > room:
                    self._lose(len(left) - room)
                logger.exception(
                    "could not record %d personal-data reads; kept for the next write", len(left)
                )
                return written
            written += len(batch)
        return written

    async def run(self, stop: asyncio.Event) -> None:
        """Flush at the end of each window (or when `max_pending` reads wait) until `stop`, then once more."""
        while not stop.is_set():
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._full.wait())]
            try:
                await asyncio.wait(waiters, timeout=self._window, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            await self.flush()
        await self.flush()
