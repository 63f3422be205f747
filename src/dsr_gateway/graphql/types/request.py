"""Privacy requests as clients see them: the request, its clock, its history; the queue connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from dsr_gateway.domain import privacy_requests as pr
from dsr_gateway.domain import requests as rq
from dsr_gateway.domain import sla_rules, workflow
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.sla import SlaStatus as DomainSlaStatus
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.observability import note_access
from dsr_gateway.graphql.types.pagination import PageInfo

if TYPE_CHECKING:
    from dsr_gateway.graphql.types.fulfilment import (
        ErasureCertificate,
        ExportPackage,
        FulfilmentStep,
        LegalHold,
        RecipientNotification,
    )
    from dsr_gateway.graphql.types.subject import Subject
    from dsr_gateway.services.requests import RequestView

# Domain enums are served as they are; their names and values are the public contract.
RequestType = rq.RequestType
RequestStatus = rq.RequestStatus
RejectionReason = rq.RejectionReason
SlaStatus = DomainSlaStatus
Jurisdiction = sla_rules.Jurisdiction
RequestAction: TypeAlias = Annotated[workflow.Action, strawberry.enum(name="RequestAction")]
ActorKind: TypeAlias = Annotated[workflow.ActorRole, strawberry.enum(name="ActorKind")]
STAFF_ROLES = frozenset({workflow.ActorRole.AGENT, workflow.ActorRole.ADMIN})
# Event data naming staff members (an assignment's new and previous assignee): staff only.
STAFF_DATA = frozenset({"assignee", "previous"})


def _shown_data(data: Any, staff_viewer: bool) -> dict[str, Any]:
    if staff_viewer:
        return dict(data)
    return {k: v for k, v in data.items() if k not in STAFF_DATA}


OutboxStatus = pr.OutboxStatus


@strawberry.type(description="The SLA rule that timed a request and the inputs that produced its dates.")
class SlaRule:
    id: str
    inputs: JSON


@strawberry.type(description="One line of a request's history: a transition, extension or assignment.")
class RequestEvent:
    action: RequestAction
    from_status: RequestStatus
    to_status: RequestStatus
    actor_kind: ActorKind
    actor_id: str | None
    occurred_at: datetime
    reason: str | None
    data: JSON

    @classmethod
    def from_domain(cls, event: workflow.RequestEvent, *, staff_viewer: bool = True) -> RequestEvent:
        # Staff identities are staff data: a subject sees that an agent acted, not which one.
        hide = not staff_viewer and event.actor_kind in STAFF_ROLES
        return cls(
            action=event.action,
            from_status=event.from_status,
            to_status=event.to_status,
            actor_kind=event.actor_kind,
            actor_id=None if hide else event.actor_id,
            occurred_at=event.occurred_at,
            reason=event.reason,
            data=cast(JSON, _shown_data(event.data, staff_viewer)),
        )


def history_loader(info: Info) -> DataLoader[str, list[workflow.RequestEvent]]:
    ctx = info.context

    async def load(ids: Sequence[str]) -> list[list[workflow.RequestEvent]]:
        found = await ctx.services.request_queries.histories_by_id(ctx.principal, list(ids))
        return [found.get(i, []) for i in ids]

    return ctx.loader("request_history", load)


def contact_loader(info: Info) -> DataLoader[str, str | None]:
    ctx = info.context

    async def load(ids: Sequence[str]) -> list[str | None]:
        found = await ctx.services.request_queries.contacts_by_id(ctx.principal, list(ids))
        return [found.get(i) for i in ids]

    return ctx.loader("request_contact", load)


@strawberry.type(description="A privacy-rights request, its deadline and its history.")
class PrivacyRequest:
    id: strawberry.ID
    type: RequestType
    status: RequestStatus
    jurisdiction: Jurisdiction
    details: JSON
    received_at: datetime
    submitter: strawberry.Private[str]
    duplicate_of: strawberry.ID | None = strawberry.field(
        description="The earlier open request of the same type for the same subject, when this repeats it."
    )
    assignee_id: strawberry.Private[str | None]
    version: int = strawberry.field(description="Pass it as expectedVersion to refuse concurrent changes.")
    due_at: datetime
    original_due_at: datetime
    acknowledge_by: datetime | None
    days_remaining: int | None = strawberry.field(
        description="Whole local days to the due day: 0 on it, negative once overdue; null once closed."
    )
    sla_status: SlaStatus
    sla_rule: SlaRule
    extended: bool
    closed_at: datetime | None
    allowed_actions: list[RequestAction] = strawberry.field(description="What you may do now.")
    subject_external_id: strawberry.Private[str | None]

    @strawberry.field(description="The signed-in subject who made it, or the subject it was logged for.")
    def subject(self) -> Annotated[Subject, strawberry.lazy("dsr_gateway.graphql.types.subject")] | None:
        from dsr_gateway.graphql.types.subject import Subject

        return Subject(external_id=self.subject_external_id) if self.subject_external_id else None

    @strawberry.field(description="The requester's email, masked (staff only; null for others).")
    async def contact(self, info: Info) -> str | None:
        return await contact_loader(info).load(str(self.id))

    @strawberry.field(
        description="Who submitted it: `subject:<id>`, `staff:<id>`, ... (others than staff see `staff` "
        "without the id)."
    )
    def submitted_by(self, info: Info) -> str:
        if info.context.principal.is_staff or not self.submitter.startswith("staff:"):
            return self.submitter
        return "staff"

    @strawberry.field(description="The agent working on it (staff only; null for others).")
    def assignee(self, info: Info) -> str | None:
        return self.assignee_id if info.context.principal.is_staff else None

    @strawberry.field(
        description="Every transition, extension and assignment, oldest first (others than staff see no "
        "agent's id)."
    )
    async def history(self, info: Info) -> list[RequestEvent]:
        staff = info.context.principal.is_staff
        events = await history_loader(info).load(str(self.id))
        return [RequestEvent.from_domain(e, staff_viewer=staff) for e in events]

    @strawberry.field(description="Its fulfilment steps, one per system per phase (staff; empty for others).")
    async def fulfilment(
        self, info: Info
    ) -> list[Annotated[FulfilmentStep, strawberry.lazy("dsr_gateway.graphql.types.fulfilment")]]:
        from dsr_gateway.graphql.types.fulfilment import request_fulfilment

        return await request_fulfilment(info, str(self.id))

    @strawberry.field(description="Legal holds agents placed on it (staff).")
    async def legal_holds(
        self, info: Info
    ) -> list[Annotated[LegalHold, strawberry.lazy("dsr_gateway.graphql.types.fulfilment")]]:
        from dsr_gateway.graphql.types.fulfilment import request_legal_holds

        return await request_legal_holds(info, str(self.id))

    @strawberry.field(description="Which systems and recipients were told of the consent change, and when.")
    async def recipients_notified(
        self, info: Info
    ) -> list[Annotated[RecipientNotification, strawberry.lazy("dsr_gateway.graphql.types.fulfilment")]]:
        from dsr_gateway.graphql.types.fulfilment import request_recipients

        return await request_recipients(info, str(self.id))

    @strawberry.field(description="The signed erasure certificate, once issued (staff and the subject).")
    async def erasure_certificate(
        self, info: Info
    ) -> Annotated[ErasureCertificate, strawberry.lazy("dsr_gateway.graphql.types.fulfilment")] | None:
        from dsr_gateway.graphql.types.fulfilment import request_certificate

        return await request_certificate(info, str(self.id))

    @strawberry.field(description="The access package (staff, export:read clients, and the subject).")
    async def export_package(
        self, info: Info
    ) -> Annotated[ExportPackage, strawberry.lazy("dsr_gateway.graphql.types.fulfilment")] | None:
        from dsr_gateway.graphql.types.fulfilment import request_export

        return await request_export(info, str(self.id))

    @classmethod
    def from_view(cls, view: RequestView) -> PrivacyRequest:
        r, clock = view.request, view.clock
        return cls(
            id=strawberry.ID(r.id),
            type=r.type,
            status=r.status,
            jurisdiction=r.jurisdiction,
            details=cast(JSON, r.details),
            received_at=r.received_at,
            submitter=r.submitted_by,
            duplicate_of=strawberry.ID(r.duplicate_of) if r.duplicate_of else None,
            assignee_id=r.assignee,
            version=r.version,
            due_at=r.due_at,
            original_due_at=r.original_due_at,
            acknowledge_by=r.acknowledge_by,
            days_remaining=clock.days_remaining,
            sla_status=clock.sla_status,
            sla_rule=SlaRule(id=r.sla_rule_id, inputs=cast(JSON, r.sla_inputs)),
            extended=r.extended,
            closed_at=r.closed_at,
            allowed_actions=list(view.allowed_actions),
            subject_external_id=r.subject_external_id,
        )


@strawberry.type
class PrivacyRequestEdge:
    cursor: str
    node: PrivacyRequest


@strawberry.type
class PrivacyRequestConnection:
    edges: list[PrivacyRequestEdge]
    page_info: PageInfo


async def subject_privacy_requests(root: Subject, info: Info) -> list[PrivacyRequest]:
    """`Subject.privacyRequests`: the subject's own requests, newest first (the subject or staff)."""
    ctx = info.context

    async def load(ids: Sequence[str]) -> list[list[RequestView]]:
        found = await ctx.services.request_queries.of_subjects(ctx.principal, list(ids))
        return [found.get(i, []) for i in ids]

    views = await ctx.loader("subject_requests", load).load(root.external_id)
    note_access(info, "subject.privacyRequests", root.external_id)
    return [PrivacyRequest.from_view(v) for v in views]


@strawberry.type(description="A request's deadline is near (AT_RISK) or has passed (OVERDUE).")
class SlaAlert:
    request_id: strawberry.ID
    kind: SlaStatus
    due_at: datetime
    raised_at: datetime
    jurisdiction: Jurisdiction
    assignee: str | None


@strawberry.type(description="One attempt to deliver an outbox message.")
class DeliveryAttempt:
    attempt: int
    attempted_at: datetime
    succeeded: bool
    detail: str | None


@strawberry.type(description="A message waiting in, or sent from, the outbox (staff).")
class OutboxMessage:
    id: int
    kind: MessageKind
    request_id: strawberry.ID | None
    recipient: str | None = strawberry.field(description="Masked, e.g. j***@e***.com.")
    subject_line: str
    body: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime | None

    @strawberry.field
    async def deliveries(self, info: Info) -> list[DeliveryAttempt]:
        ctx = info.context

        async def load(ids: Sequence[int]) -> list[list[Any]]:
            found = await ctx.services.outbox.deliveries(ctx.principal, list(ids))
            return [found.get(i, []) for i in ids]

        records = await ctx.loader("outbox_deliveries", load).load(self.id)
        return [DeliveryAttempt(attempt=d.attempt, attempted_at=d.attempted_at, succeeded=d.succeeded,
                                detail=d.detail) for d in records]  # fmt: skip

    @classmethod
    def from_domain(cls, m: pr.OutboxMessage) -> OutboxMessage:
        return cls(
            id=m.id,
            kind=m.kind,
            request_id=strawberry.ID(m.request_id) if m.request_id else None,
            recipient=m.recipient_hint,
            subject_line=m.subject_line,
            body=m.body,
            status=m.status,
            attempts=m.attempts,
            next_attempt_at=m.next_attempt_at,
            last_error=m.last_error,
            sent_at=m.sent_at,
            created_at=m.created_at,
        )
