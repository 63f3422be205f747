"""The Protocols that db/ and connectors/ satisfy; services depend on these and nothing below."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from dsr_gateway.domain.consent import ConsentEvent, ConsentRecord, NewConsentEvent
from dsr_gateway.domain.consent_feed import FeedPosition
from dsr_gateway.domain.notices import PrivacyNotice
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.subjects import Subject

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


class PurposeRepository(Protocol):
    async def get(self, key: str) -> Purpose | None: ...
    async def list_all(self) -> Sequence[Purpose]: ...
    async def existing_keys(self, keys: Collection[str]) -> set[str]: ...
    async def add(self, purpose: Purpose, now: datetime) -> None: ...
    async def update(self, purpose: Purpose, expected_version: int, now: datetime) -> None: ...
    async def mark_material_change(self, keys: Collection[str], notice_version: int) -> None: ...


class NoticeRepository(Protocol):
    async def latest_version(self) -> int | None: ...
    async def get(self, version: int | None) -> PrivacyNotice | None: ...
    async def add(self, notice: PrivacyNotice) -> None: ...


class ApiKeyRepository(Protocol):
    async def add(
        self, name: str, prefix: str, key_hash: str, scopes: Sequence[str], now: datetime
    ) -> int: ...
    async def find_active_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...
    async def list_all(self) -> Sequence[ApiKeyRecord]: ...
    async def revoke(self, name: str, now: datetime) -> bool: ...
    async def name_taken(self, name: str) -> bool: ...


class SubjectRepository(Protocol):
    async def get(self, external_id: str) -> Subject | None: ...
    async def get_by_id(self, subject_id: int) -> Subject | None: ...
    async def get_or_create(self, external_id: str, now: datetime) -> Subject: ...
    async def many(self, external_ids: Collection[str]) -> dict[str, Subject]: ...


class ConsentLedger(Protocol):
    """Append-only: events are added, never changed; the projection is written beside them."""

    async def lock_subject(self, external_id: str, now: datetime) -> int: ...
    async def ensure_subjects(self, external_ids: Collection[str], now: datetime) -> dict[str, int]: ...
    async def notice_purposes(self, version: int) -> set[str] | None: ...
    async def events_for_key(self, subject_id: int, idempotency_key: str) -> list[ConsentEvent]: ...
    async def states(
        self, subject_ids: Collection[int], purposes: Collection[str] | None = None
    ) -> dict[int, list[ConsentRecord]]: ...
    async def append(self, events: Sequence[tuple[int, NewConsentEvent]]) -> list[ConsentEvent]: ...
    async def save_states(self, records: Iterable[tuple[int, ConsentRecord]]) -> None: ...
    async def all_events(self, subject_ids: Collection[int]) -> list[ConsentEvent]: ...


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """An event with the external id of its subject, as readers see it."""

    event: ConsentEvent
    external_id: str
    position: FeedPosition


@dataclass(frozen=True, slots=True)
class ConsentCheckRows:
    """What one consent check read in one statement: the purpose and the records by external id."""

    purpose: Purpose
    records: dict[str, list[ConsentRecord]]


class ConsentReader(Protocol):
    """The read side of the ledger, on a connection of its own (no session, no transaction)."""

    async def check(
        self, purpose: str, external_ids: Sequence[str], topic: str, channel: str
    ) -> ConsentCheckRows | None: ...
    async def purposes(self) -> list[Purpose]: ...
    async def states(self, external_ids: Collection[str]) -> dict[str, list[ConsentRecord]]: ...
    async def history(
        self, external_id: str | None, first: int, before_id: int | None
    ) -> list[LedgerEntry]: ...
    async def feed(self, external_id: str | None, first: int, after: FeedPosition) -> list[LedgerEntry]: ...


class UnitOfWork(Protocol):
    """One transaction: repositories share it; nothing is written until commit()."""

    purposes: PurposeRepository
    notices: NoticeRepository
    api_keys: ApiKeyRepository
    subjects: SubjectRepository
    consents: ConsentLedger

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class EventBus(Protocol):
    """Fan-out of live events to subscribers (in this process, or across processes)."""

    async def publish(self, channel: str, payload: dict[str, object]) -> None: ...
    def subscribe(self, channel: str) -> AsyncIterator[dict[str, object]]: ...
