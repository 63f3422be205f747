"""The Protocols and values of fulfilment: what a connector to a data system does, and what it reports.

Connectors (connectors/sql_connector.py, connectors/http_connector.py) satisfy `Connector`; the request
worker calls them one step per system per phase and never learns how a system is reached. Every result is
data (no personal values except the rectified ones, which the caller redacts with `for_history()`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class SubjectIdentifiers:
    """Who the request is about, as the business knows them."""

    external_id: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class StepRef:
    """Which request step a call belongs to: the idempotency key downstream, and the callback address."""

    request_id: str
    step: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.request_id}:{self.step}"


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Some of the subject's rows of one table of one system (a table may come in many batches)."""

    system: str
    table: str
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


class RectifyOutcome(StrEnum):
    APPLIED = "applied"
    NOT_HELD = (
        "not_held"  # the system (or this table) holds no such field for the subject: reported, not failed
    )
    NOT_ALLOWED = "not_allowed"  # the declaration does not let rectification change this field


@dataclass(frozen=True, slots=True)
class FieldRectification:
    system: str
    table: str | None
    field: str
    outcome: RectifyOutcome
    rows: int = 0
    old_values: tuple[object, ...] = ()
    new_value: object = None
    sensitive: bool = False

    def for_history(self) -> dict[str, object]:
        """What the request history may record: values of sensitive fields are redacted."""
        hide = self.sensitive
        return {
            "system": self.system,
            "table": self.table,
            "field": self.field,
            "outcome": self.outcome.value,
            "rows": self.rows,
            "old": [REDACTED if hide else _plain(v) for v in self.old_values],
            "new": REDACTED if hide else _plain(self.new_value),
        }


@dataclass(frozen=True, slots=True)
class RectifyResult:
    system: str
    fields: tuple[FieldRectification, ...]
    pending: bool = False  # callback mode: the system answers later


class ErasureAction(StrEnum):
    DELETED = "deleted"
    NULLED = "nulled"
    MASKED = "masked"
    HASHED = "hashed"
    ERASED = "erased"  # a downstream that only says "erased"
    KEPT = "kept"


@dataclass(frozen=True, slots=True)
class FieldErasure:
    """What happened to one field (or, for DELETED, to whole rows) of one table; `reason` when KEPT."""

    table: str
    field: str | None
    action: ErasureAction
    rows: int = 0
    category: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "table": self.table,
            "field": self.field,
            "action": self.action.value,
            "rows": self.rows,
            "category": self.category,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ErasureResult:
    system: str
    items: tuple[FieldErasure, ...]
    pending: bool = False


@dataclass(frozen=True, slots=True)
class LegalHold:
    """Data of `category` must be kept, for `reason` (from the systems file, or placed by an agent)."""

    category: str
    reason: str
    source: str = "configuration"


class ConsentChange(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    RESTRICTED = "restricted"
    OBJECTED = "objected"


@dataclass(frozen=True, slots=True)
class ConsentNotification:
    """Whether a system was told (GDPR Art. 19); `told` is False when it does not use these purposes."""

    system: str
    purposes: tuple[str, ...]
    change: ConsentChange
    told: bool
    detail: str = ""
    pending: bool = False


class ConnectorError(Exception):
    """A system could not do what was asked. `retryable` tells the worker whether to try again."""

    retryable: bool = False

    def __init__(self, system: str, message: str) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system
        self.message = message


class RetryableConnectorError(ConnectorError):
    """Worth trying again later: a timeout, a refused connection, a 5xx, a locked database."""

    retryable = True


class PermanentConnectorError(ConnectorError):
    """Trying again will not help until someone changes something: a 4xx, a bad declaration."""

    retryable = False


class Connector(Protocol):
    """One data system. Every method is idempotent: calling it again for the same step is harmless."""

    @property
    def name(self) -> str: ...

    def access(self, subject: SubjectIdentifiers, step: StepRef | None = None) -> AsyncIterator[RecordBatch]:
        """The subject's records, streamed in batches per table (never all in memory)."""
        ...

    async def rectify(
        self, subject: SubjectIdentifiers, changes: Mapping[str, object], step: StepRef | None = None
    ) -> RectifyResult: ...

    async def erase(
        self, subject: SubjectIdentifiers, holds: Sequence[LegalHold], step: StepRef | None = None
    ) -> ErasureResult: ...

    async def notify_consent_change(
        self,
        subject: SubjectIdentifiers,
        purposes: Sequence[str],
        change: ConsentChange,
        step: StepRef | None = None,
    ) -> ConsentNotification: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str  # where the storage keeps it (a path relative to its directory, or an object key)
    size: int
    sha256: str


class ExportStorage(Protocol):
    """Where access packages live: a directory (connectors/export_storage.py) or an S3-compatible bucket."""

    async def save(self, key: str, chunks: AsyncIterable[bytes]) -> StoredFile: ...
    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The file's chunks, the file opened now: FileNotFoundError when it is gone."""
        ...

    async def delete(self, key: str) -> None: ...
    async def stale_keys(self, before: datetime) -> list[str]:
        """The keys of files last written before `before` (partial writes included)."""
        ...


@dataclass(frozen=True, slots=True)
class ExportRecord:
    id: str
    request_id: str
    path: str
    size: int
    sha256: str
    created_at: datetime
    expires_at: datetime
    download_count: int = 0
    deleted_at: datetime | None = None  # the file was deleted after the link expired


class ExportPackageRepository(Protocol):
    async def add(self, record: ExportRecord) -> None: ...
    async def get(self, export_id: str) -> ExportRecord | None: ...
    async def many(self, export_ids: Collection[str]) -> dict[str, ExportRecord]: ...
    async def count_download(self, export_id: str) -> int: ...
    async def expired(self, now: datetime, limit: int) -> list[ExportRecord]: ...
    async def mark_deleted(self, export_ids: Collection[str], now: datetime) -> int: ...
    async def kept_paths(self, paths: Collection[str]) -> set[str]: ...


class ExportUnitOfWork(Protocol):
    @property
    def exports(self) -> ExportPackageRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def commit(self) -> None: ...


class CertificateSigner(Protocol):
    """Signs claims as a compact JWS with the gateway's key; verifies one it signed."""

    def sign(self, claims: Mapping[str, object]) -> str: ...
    def verify(self, token: str) -> dict[str, object]: ...


@dataclass(frozen=True, slots=True)
class SystemDescription:
    """What the access package manifest says about one system (as the notice states it)."""

    name: str
    kind: str
    data_categories: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    retention: str = ""
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class AccessPackageWriter(Protocol):
    """Gathers a subject's records from connectors into one stored package (connectors/export_package.py)."""

    async def write(
        self,
        export_id: str,
        request_id: str,
        subject: SubjectIdentifiers,
        sources: Sequence[tuple[SystemDescription, Connector]],
    ) -> StoredFile: ...
