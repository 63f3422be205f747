"""Ports of the accountability reads and records: report aggregates, the audit trail, the access log.

db/repositories/reports.py and db/repositories/audit_trail.py satisfy them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dsr_gateway.domain.reports import (
    ConsentActivity,
    ConsentReviewCount,
    ConsentStateCount,
    ReportPeriod,
    RequestCount,
)


@dataclass(frozen=True, slots=True)
class ReviewRule:
    """A purpose whose grants need the subject again: after `cutoff` (granted on or before it), or when
    given under a notice version below `material_version`."""

    purpose: str
    cutoff: datetime | None
    material_version: int | None


@dataclass(frozen=True, slots=True)
class ClosedFigures:
    met: int
    missed: int
    median_days: float | None
    p90_days: float | None


class ReportQueries(Protocol):
    """Aggregates computed by the database; every method is one statement."""

    async def consents_by_state(self) -> Sequence[ConsentStateCount]: ...
    async def consent_activity(self, period: ReportPeriod) -> Sequence[ConsentActivity]: ...
    async def consents_due_for_review(self, rules: Sequence[ReviewRule]) -> Sequence[ConsentReviewCount]: ...
    async def requests_by_outcome(self, period: ReportPeriod) -> Sequence[RequestCount]: ...
    async def closed_figures(self, period: ReportPeriod) -> ClosedFigures: ...
    async def extensions_granted(self, period: ReportPeriod) -> int: ...
    async def overdue(self, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One recorded act on a subject's consents or on a request: who, when, what."""

    kind: str  # CONSENT or REQUEST
    event_id: int
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    action: str
    subject_external_id: str | None
    request_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataAccess:
    """One read of a subject's personal data (or of a request about them) by staff or an API client."""

    occurred_at: datetime
    actor_kind: str
    actor_id: str
    operation: str
    what: str
    subject_external_id: str | None
    request_id: str | None
    id: int | None = None


class AuditTrailStore(Protocol):
    async def consent_trail(
        self, external_id: str, before_id: int | None, limit: int
    ) -> Sequence[TrailEntry]: ...
    async def request_trail(
        self, request_id: str, before_id: int | None, limit: int
    ) -> Sequence[TrailEntry]: ...
    async def request_subject(self, request_id: str) -> tuple[bool, str | None]:
        """(the request exists, its subject's external id)."""
        ...

    async def add_accesses(self, accesses: Sequence[DataAccess]) -> None:
        """One multi-row INSERT in its own short transaction."""
        ...

    async def accesses(
        self, external_id: str | None, request_id: str | None, before_id: int | None, limit: int
    ) -> Sequence[DataAccess]: ...
