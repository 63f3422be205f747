"""Root fields of the audit trail: who did what (staff), who read what (administrators)."""

from __future__ import annotations

import strawberry

from dsr_gateway.domain.errors import DomainError
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import query_error
from dsr_gateway.graphql.observability import note_access
from dsr_gateway.graphql.permissions import IsAdmin, IsStaff
from dsr_gateway.graphql.types.audit_trail import (
    AuditTrailConnection,
    AuditTrailEdge,
    AuditTrailEntry,
    PersonalDataAccess,
    PersonalDataAccessConnection,
    PersonalDataAccessEdge,
)
from dsr_gateway.graphql.types.pagination import PageInfo


@strawberry.type
class AuditTrailQuery:
    @strawberry.field(
        description="Who did what to a subject's consents (subjectId) or to a request (requestId), newest "
        "first (staff). Give exactly one of the two.",
        permission_classes=[IsStaff],
    )
    async def audit_trail(
        self,
        info: Info,
        subject_id: str | None = None,
        request_id: strawberry.ID | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> AuditTrailConnection:
        ctx = info.context
        request = str(request_id) if request_id is not None else None
        try:
            page = await ctx.services.audit_trail.trail(ctx.principal, subject_id, request, first, after)
        except DomainError as exc:
            raise query_error(exc) from exc
        if subject_id is not None:
            note_access(info, "auditTrail", subject_id)
        elif request is not None:
            note_access(info, "auditTrail", await ctx.services.audit_trail.request_subject(request), request)
        return AuditTrailConnection(
            edges=[AuditTrailEdge(cursor=c, node=AuditTrailEntry.from_domain(e)) for c, e in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        description="Who read a subject's (or a request's) personal data, newest first (administrators).",
        permission_classes=[IsAdmin],
    )
    async def personal_data_accesses(
        self,
        info: Info,
        subject_id: str | None = None,
        request_id: strawberry.ID | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> PersonalDataAccessConnection:
        ctx = info.context
        request = str(request_id) if request_id is not None else None
        try:
            page = await ctx.services.audit_trail.accesses(ctx.principal, subject_id, request, first, after)
        except DomainError as exc:
            raise query_error(exc) from exc
        return PersonalDataAccessConnection(
            edges=[
                PersonalDataAccessEdge(cursor=c, node=PersonalDataAccess.from_domain(a))
                for c, a in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )
