"""The Protocols that db/ and connectors/ satisfy; services depend on these and nothing below."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

from dsr_gateway.domain.consent import CheckedRecord, ConsentEvent, ConsentRecord, NewConsentEvent
from dsr_gateway.domain.consent_feed import FeedPosition
from dsr_gateway.domain.consent_import import ImportRow, TableGrowth
from dsr_gateway.domain.notices import PrivacyNotice
from dsr_gateway.domain.privacy_requests import (
    Challenge,
    OutboxMessage,
    OutboxStatus,
    PrivacyRequest,
    QueueCursor,
    QueueFilter,
    QueuePage,
)
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.sla import Pause
from dsr_gateway.domain.subjects import Subject
from dsr_gateway.domain.webhooks import DeliveryPage, WebhookDelivery, WebhookEventType, WebhookSubscription
from dsr_gateway.domain.workflow import RequestEvent
from dsr_gateway.services.comms.ports import CommsRepository
from dsr_gateway.services.fulfilment.ports import FulfilmentStepRepository

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


class WebhookRepository(Protocol):
    async def add_subscription(
        self,
        url: str,
        events: Sequence[WebhookEventType],
        secret_encrypted: str,
        description: str,
        created_by: str,
        now: datetime,
    ) -> WebhookSubscription: ...
    async def get_subscription(self, subscription_id: int) -> WebhookSubscription | None: ...
    async def active_subscriptions(self) -> Sequence[WebhookSubscription]: ...
    async def deactivate_subscription(self, subscription_id: int) -> bool: ...
    async def enqueue(
        self, event_type: WebhookEventType, payload: dict[str, Any], now: datetime
    ) -> list[int]: ...
    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None: ...
    async def deliveries(self, subscription_id: int, first: int, before_id: int | None) -> DeliveryPage: ...
    async def add_redelivery(self, original: WebhookDelivery, now: datetime) -> WebhookDelivery: ...


class SecretCipher(Protocol):
    """Reversible encryption for secrets we must read back (webhook signing secrets)."""

    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, stored: str) -> str: ...


class LockedWithCatalogue(NamedTuple):
    """`ConsentLedger.lock_with_catalogue`'s answer."""

    subject_id: int | None  # locked; None: not created yet, or (without waiting) held by another writer
    purposes: list[Purpose]
    stated: set[str] | None  # the purposes the notice version states; None: no such version
    held: bool = False  # without waiting: the subject exists and another transaction holds it


class ConsentLedger(Protocol):
    """Append-only: events are added, never changed; the projection is written beside them."""

    async def limit_lock_wait(self, seconds: float) -> None: ...
    async def lock_subject(self, external_id: str, now: datetime) -> int: ...
    async def lock_many(self, external_ids: Collection[str]) -> tuple[dict[str, int], set[str]]: ...
    async def ensure_subjects(self, external_ids: Collection[str], now: datetime) -> dict[str, int]: ...
    async def notice_purposes(self, version: int) -> set[str] | None: ...
    async def purposes_and_notice(self, version: int | None) -> tuple[list[Purpose], set[str] | None]: ...
    async def lock_with_catalogue(
        self, external_id: str, version: int | None, *, wait: bool = True
    ) -> LockedWithCatalogue: ...
    async def events_for_key(self, subject_id: int, idempotency_key: str) -> list[ConsentEvent]: ...
    async def events_for_keys(
        self, pairs: Collection[tuple[int, str]]
    ) -> dict[tuple[int, str], list[ConsentEvent]]: ...
    async def states(
        self, subject_ids: Collection[int], purposes: Collection[str] | None = None
    ) -> dict[int, list[ConsentRecord]]: ...
    async def locked_states(self, subject_ids: Collection[int]) -> dict[int, list[ConsentRecord]]: ...
    async def append(self, events: Sequence[tuple[int, NewConsentEvent]]) -> list[ConsentEvent]: ...
    async def save_states(self, records: Iterable[tuple[int, ConsentRecord]]) -> None: ...
    async def all_events(self, subject_ids: Collection[int]) -> list[ConsentEvent]: ...
    async def followup_position(self, name: str, now: datetime) -> FeedPosition: ...
    async def feed(self, first: int, after: FeedPosition) -> list[LedgerEntry]: ...
    async def move_followup(self, name: str, position: FeedPosition, now: datetime) -> None: ...
    async def analyze(self, tables: Sequence[str]) -> None: ...


class ConsentImportWriter(Protocol):
    """Records a chunk of imported rows: subjects created on first use, each event continuing its
    subject's chain in row order, the projection folded from the stored records."""

    async def record(self, rows: Sequence[ImportRow], now: datetime) -> None:
        """May return before the chunk is written (it is written while the next is prepared): the unit of
        work's commit writes what is left; a write's error is raised by the next `record` or the commit."""

    def growth(self) -> Mapping[str, TableGrowth]: ...
    async def analyze(self, tables: Sequence[str]) -> None: ...


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
    records: dict[str, list[CheckedRecord]]


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


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """A requester's contact details as stored: encrypted, with keyed lookup hashes."""

    id: int
    subject_id: int | None
    email_encrypted: str | None
    email_hash: str | None
    phone_encrypted: str | None


class PrivacyRequestRepository(Protocol):
    async def add(self, request: PrivacyRequest) -> None: ...
    async def get(self, request_id: str) -> PrivacyRequest | None: ...
    async def many(self, request_ids: Collection[str]) -> dict[str, PrivacyRequest]: ...
    async def find_by_idempotency_key(self, key: str) -> PrivacyRequest | None: ...
    async def find_open_duplicate(
        self, request_type: str, subject_id: int | None, email_hash: str | None
    ) -> PrivacyRequest | None: ...
    async def save(self, request: PrivacyRequest, expected_version: int) -> PrivacyRequest: ...
    async def set_sla_status(self, request_id: str, sla_status: str, now: datetime) -> None: ...
    async def page(self, where: QueueFilter, after: QueueCursor | None, first: int) -> QueuePage: ...
    async def by_subjects(self, subject_ids: Collection[int]) -> dict[int, list[PrivacyRequest]]: ...
    async def add_event(self, event: RequestEvent) -> None: ...
    async def events_for(self, request_ids: Collection[str]) -> dict[str, list[RequestEvent]]: ...
    async def pauses(self, request_id: str) -> tuple[Pause, ...]: ...
    async def open_pauses(self, request_ids: Collection[str]) -> set[str]: ...
    async def add_pause(self, request_id: str, start: datetime) -> None: ...
    async def end_pause(self, request_id: str, end: datetime) -> None: ...
    async def sweep_candidates(
        self, due_before: datetime, now: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> Sequence[PrivacyRequest]: ...
    async def add_alert(self, request_id: str, kind: str, due_at: datetime, now: datetime) -> bool: ...


class IdentityRepository(Protocol):
    async def find_by_email_hash(self, email_hash: str) -> IdentityRecord | None: ...
    async def add(
        self,
        subject_id: int | None,
        email: tuple[str, str] | None,
        phone: tuple[str, str] | None,
        now: datetime,
    ) -> int: ...
    async def many(self, identity_ids: Collection[int]) -> dict[int, IdentityRecord]: ...
    async def challenge(self, request_id: str) -> Challenge | None: ...
    async def save_challenge(self, challenge: Challenge) -> None: ...


@dataclass(frozen=True, slots=True)
class NewMessage:
    kind: str
    request_id: str | None
    recipient_encrypted: str | None
    recipient_hint: str | None
    subject_line: str
    body: str
    template_data: dict[str, object]
    status: OutboxStatus
    html: str | None = None
    language: str | None = None
    headers: dict[str, str] | None = None
    subject_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: OutboxMessage
    recipient_encrypted: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    outbox_id: int
    attempt: int
    attempted_at: datetime
    succeeded: bool
    detail: str | None


class OutboxRepository(Protocol):
    async def add(self, message: NewMessage, now: datetime) -> int: ...
    async def add_many(self, messages: Sequence[NewMessage], now: datetime) -> list[int]: ...
    async def add_later(self, messages: Sequence[NewMessage], now: datetime) -> None:
        """Added in this transaction by its commit at the latest, possibly with other rows (no ids)."""
        ...

    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> Sequence[StoredMessage]: ...
    async def unlogged(self, limit: int) -> Sequence[StoredMessage]: ...
    async def mark_logged(self, ids: Collection[int], now: datetime) -> None: ...
    async def record_attempt(
        self,
        message_id: int,
        attempt: DeliveryRecord,
        status: OutboxStatus,
        next_attempt_at: datetime,
        sent_at: datetime | None,
    ) -> None: ...
    async def listing(
        self, request_id: str | None, first: int, before_id: int | None
    ) -> Sequence[OutboxMessage]: ...
    async def deliveries(self, outbox_ids: Collection[int]) -> dict[int, list[DeliveryRecord]]: ...


class UnitOfWork(Protocol):
    """One transaction: repositories share it; nothing is written until commit()."""

    # Read-only members, so that an implementation may hold more specific repository types.
    @property
    def purposes(self) -> PurposeRepository: ...
    @property
    def notices(self) -> NoticeRepository: ...
    @property
    def api_keys(self) -> ApiKeyRepository: ...
    @property
    def subjects(self) -> SubjectRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def consents(self) -> ConsentLedger: ...
    @property
    def consent_import(self) -> ConsentImportWriter: ...
    @property
    def requests(self) -> PrivacyRequestRepository: ...
    @property
    def identities(self) -> IdentityRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def fulfilment(self) -> FulfilmentStepRepository: ...
    @property
    def comms(self) -> CommsRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def flush(self) -> None:
        """Send every write made so far (COMMIT then sends nothing but itself)."""

    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class EventBus(Protocol):
    """Fan-out of live events to subscribers (in this process, or across processes)."""

    async def publish(self, channel: str, payload: dict[str, object]) -> None: ...
    def subscribe(self, channel: str) -> AsyncIterator[dict[str, object]]: ...


class Cipher(Protocol):
    """Encryption at rest of contact details, and keyed lookup hashes (never a plain hash of an email)."""

    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, token: str) -> str: ...
    def lookup_hash(self, value: str) -> str: ...


class DeliveryFailed(Exception):
    """A message could not be delivered; `permanent` ones are not retried (e.g. the address is refused)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    """Sends one email; returns the server's answer for the delivery log, raises DeliveryFailed."""

    @property
    def configured(self) -> bool: ...
    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str: ...
