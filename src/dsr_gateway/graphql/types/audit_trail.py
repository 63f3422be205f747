"""What staff see of the audit trail and of the personal-data access log."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from dsr_gateway.graphql.types.pagination import PageInfo
from dsr_gateway.services.accountability_ports import DataAccess, TrailEntry


@strawberry.type(description="One recorded act: who (actor), when, what (action and detail).")
class AuditTrailEntry:
    kind: str = strawberry.field(description="CONSENT (a consent event) or REQUEST (a request's history).")
    event_id: str
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    action: str
    subject_id: str | None = strawberry.field(description="The subject's external id.")
    request_id: str | None
    detail: JSON

    @classmethod
    def from_domain(cls, entry: TrailEntry) -> AuditTrailEntry:
        return cls(
            kind=entry.kind,
            event_id=str(entry.event_id),
            occurred_at=entry.occurred_at,
            actor_kind=entry.actor_kind,
            actor_id=entry.actor_id,
            action=entry.action,
            subject_id=entry.subject_external_id,
            request_id=entry.request_id,
            detail=cast(JSON, entry.detail),
        )


@strawberry.type
class AuditTrailEdge:
    cursor: str
    node: AuditTrailEntry


@strawberry.type
class AuditTrailConnection:
    edges: list[AuditTrailEdge]
    page_info: PageInfo


@strawberry.type(description="One read of a subject's personal data by staff or an API client.")
class PersonalDataAccess:
    occurred_at: datetime
    actor_kind: str
    actor_id: str
    operation: str = strawberry.field(description="The GraphQL operation name, or `anonymous`.")
    what: str = strawberry.field(description="The field read, e.g. `subject.consents`, `consentCheck`.")
    subject_id: str | None
    request_id: str | None

    @classmethod
    def from_domain(cls, access: DataAccess) -> PersonalDataAccess:
        return cls(
            occurred_at=access.occurred_at,
            actor_kind=access.actor_kind,
            actor_id=access.actor_id,
            operation=access.operation,
            what=access.what,
            subject_id=access.subject_external_id,
            request_id=access.request_id,
        )


@strawberry.type
class PersonalDataAccessEdge:
    cursor: str
    node: PersonalDataAccess


@strawberry.type
class PersonalDataAccessConnection:
    edges: list[PersonalDataAccessEdge]
    page_info: PageInfo
