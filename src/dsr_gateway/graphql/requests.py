"""Root fields for privacy requests: intake, verification, the workflow, the queue, live updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from dsr_gateway.domain import privacy_requests as pr
from dsr_gateway.domain import requests as rq
from dsr_gateway.domain import sla_rules
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_from_domain,
    query_error,
)
from dsr_gateway.graphql.observability import note_access
from dsr_gateway.graphql.permissions import IsStaff
from dsr_gateway.graphql.types.pagination import PageInfo
from dsr_gateway.graphql.types.request import (
    Jurisdiction,
    OutboxMessage,
    PrivacyRequest,
    PrivacyRequestConnection,
    PrivacyRequestEdge,
    RejectionReason,
    RequestAction,
    RequestStatus,
    RequestType,
    SlaAlert,
    SlaStatus,
)
from dsr_gateway.services.requests import SubmitCommand
from dsr_gateway.services.requests.common import REQUEST_CHANNEL, SLA_ALERT_CHANNEL


@strawberry.input(description="A new privacy request. Anonymous callers give an email and verify a code.")
class SubmitPrivacyRequestInput:
    type: RequestType
    jurisdiction: Jurisdiction
    details: JSON | None = strawberry.field(
        default=None,
        description="Per type: RECTIFICATION {changes: [{field, currentValue, requestedValue}]}; "
        "ERASURE {all} or {categories}; RESTRICTION/OBJECTION {purposes}; others optional lists.",
    )
    email: str | None = strawberry.field(default=None, description="Required when not signed in.")
    phone: str | None = None
    subject_external_id: str | None = strawberry.field(
        default=None, description="Staff: the subject the request is logged for."
    )
    received_at: datetime | None = strawberry.field(
        default=None, description="Staff: when it really arrived (post, phone); defaults to now."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="Sending the same key again returns the same request."
    )

    def to_command(self) -> SubmitCommand:
        return SubmitCommand(
            type=rq.RequestType(self.type),
            jurisdiction=sla_rules.Jurisdiction(self.jurisdiction),
            details=cast(dict[str, Any] | None, self.details),
            email=self.email,
            phone=self.phone,
            subject_external_id=self.subject_external_id,
            received_at=self.received_at,
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="Narrow the queue; every field is optional and they combine with AND.")
class PrivacyRequestFilter:
    status: list[RequestStatus] | None = None
    type: list[RequestType] | None = None
    jurisdiction: list[Jurisdiction] | None = None
    sla_status: list[SlaStatus] | None = None
    assignee: str | None = None
    unassigned: bool | None = None
    due_before: datetime | None = None

    def to_domain(self) -> pr.QueueFilter:
        return pr.QueueFilter(
            statuses=tuple(rq.RequestStatus(s) for s in self.status or ()),
            types=tuple(rq.RequestType(t) for t in self.type or ()),
            jurisdictions=tuple(sla_rules.Jurisdiction(j) for j in self.jurisdiction or ()),
            sla_statuses=tuple(str(s.value) for s in self.sla_status or ()),
            assignee=self.assignee,
            unassigned=bool(self.unassigned),
            due_before=self.due_before,
        )


@strawberry.type
class SubmitPrivacyRequestSuccess:
    request: PrivacyRequest
    created: bool = strawberry.field(description="False when the idempotency key found an earlier one.")
    verification_required: bool = strawberry.field(
        description="True when a code was emailed: call verifyPrivacyRequest with it."
    )


@strawberry.type
class PrivacyRequestSuccess:
    request: PrivacyRequest


@strawberry.type
class ResendVerificationCodeSuccess:
    next_resend_at: datetime


@strawberry.type(description="A change to a request you may see.")
class PrivacyRequestUpdate:
    request_id: strawberry.ID
    action: str
    status: RequestStatus
    occurred_at: datetime
    request: PrivacyRequest


SubmitPrivacyRequestResult = Annotated[
    SubmitPrivacyRequestSuccess | ValidationError | PermissionDeniedError | ConflictError,
    strawberry.union("SubmitPrivacyRequestResult"),
]
PrivacyRequestResult = Annotated[
    PrivacyRequestSuccess | ValidationError | NotFoundError | PermissionDeniedError | ConflictError,
    strawberry.union("PrivacyRequestResult"),
]
ResendVerificationCodeResult = Annotated[
    ResendVerificationCodeSuccess | NotFoundError | ConflictError,
    strawberry.union("ResendVerificationCodeResult"),
]


async def _acted(info: Info, action: Awaitable[pr.PrivacyRequest]) -> PrivacyRequestResult:
    try:
        request = await action
    except DomainError as exc:
        return error_from_domain(exc)  # type: ignore[return-value]
    view = await info.context.services.request_queries.present(info.context.principal, request)
    return PrivacyRequestSuccess(request=PrivacyRequest.from_view(view))


@strawberry.type
class RequestQuery:
    @strawberry.field(description="One request: staff see any, a subject their own; otherwise null.")
    async def privacy_request(self, info: Info, id: strawberry.ID) -> PrivacyRequest | None:
        view = await info.context.services.request_queries.get(info.context.principal, str(id))
        if view is not None:
            note_access(info, "privacyRequest", view.request.subject_external_id, view.request.id)
        return PrivacyRequest.from_view(view) if view else None

    @strawberry.field(
        description="The agent queue (staff): by due date, then received-at.", permission_classes=[IsStaff]
    )
    async def privacy_requests(
        self,
        info: Info,
        filter: PrivacyRequestFilter | None = None,
        first: int | None = 25,
        after: str | None = None,
    ) -> PrivacyRequestConnection:
        where = filter.to_domain() if filter else pr.QueueFilter()
        try:
            page = await info.context.services.request_queries.page(
                info.context.principal, where, first, after
            )
        except DomainError as exc:
            # A list has no union to carry the failure: a client's bad cursor is shown, not masked.
            raise query_error(exc) from exc
        for v in page.items:
            note_access(info, "privacyRequests", v.request.subject_external_id, v.request.id)
        edges = [
            PrivacyRequestEdge(
                cursor=pr.QueueCursor(v.request.due_at, v.request.received_at, v.request.id).encode(),
                node=PrivacyRequest.from_view(v),
            )
            for v in page.items
        ]
        return PrivacyRequestConnection(
            edges=edges, page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)
        )

    @strawberry.field(
        description="Outbox messages, newest first (staff). Verification codes are shown only in "
        "development, "
        "where they can be read here when no SMTP is configured.",
        permission_classes=[IsStaff],
    )
    async def outbox_messages(
        self, info: Info, request_id: strawberry.ID | None = None, first: int = 50, before: int | None = None
    ) -> list[OutboxMessage]:
        messages = await info.context.services.outbox.listing(
            info.context.principal, str(request_id) if request_id else None, first, before
        )
        for m in messages:
            note_access(info, "outboxMessages", None, m.request_id)
        return [OutboxMessage.from_domain(m) for m in messages]


@strawberry.type
class RequestMutation:
    @strawberry.mutation(description="Submit a privacy request (subject, anonymous with email, or staff).")
    async def submit_privacy_request(
        self, info: Info, input: SubmitPrivacyRequestInput
    ) -> SubmitPrivacyRequestResult:
        ctx = info.context
        try:
            submitted = await ctx.services.request_intake.submit(ctx.principal, input.to_command())
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        view = await ctx.services.request_queries.present(ctx.principal, submitted.request)
        return SubmitPrivacyRequestSuccess(
            request=PrivacyRequest.from_view(view),
            created=submitted.created,
            verification_required=submitted.verification_required,
        )

    @strawberry.mutation(description="Confirm an anonymous request with the emailed 6-digit code.")
    async def verify_privacy_request(self, info: Info, id: strawberry.ID, code: str) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(info, ctx.services.request_intake.verify(ctx.principal, str(id), code))

    @strawberry.mutation(description="Email a new code (after a cooldown); the old code stops working.")
    async def resend_verification_code(self, info: Info, id: strawberry.ID) -> ResendVerificationCodeResult:
        ctx = info.context
        try:
            at = await ctx.services.request_intake.resend_code(ctx.principal, str(id))
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return ResendVerificationCodeSuccess(next_resend_at=at)

    @strawberry.mutation(description="Approve: fulfilment starts (staff).")
    async def approve_privacy_request(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None, note: str | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info, ctx.services.request_actions.approve(ctx.principal, str(id), expected_version, note)
        )

    @strawberry.mutation(description="Refuse with a reason code and a message for the subject (staff).")
    async def reject_privacy_request(
        self,
        info: Info,
        id: strawberry.ID,
        reason: RejectionReason,
        message: str,
        expected_version: int | None = None,
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info,
            ctx.services.request_actions.reject(
                ctx.principal, str(id), rq.RejectionReason(reason), message, expected_version
            ),
        )

    @strawberry.mutation(description="Ask the subject for information; pauses the clock where lawful.")
    async def request_information(
        self, info: Info, id: strawberry.ID, question: str, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info,
            ctx.services.request_actions.request_information(
                ctx.principal, str(id), question, expected_version
            ),
        )

    @strawberry.mutation(description="Answer the question asked (the subject, or staff on their behalf).")
    async def provide_information(
        self, info: Info, id: strawberry.ID, answer: str, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info,
            ctx.services.request_actions.provide_information(
                ctx.principal, str(id), answer, expected_version
            ),
        )

    @strawberry.mutation(description="Extend the deadline once, as the regime allows; the subject is told.")
    async def extend_privacy_request(
        self, info: Info, id: strawberry.ID, reason: str, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info, ctx.services.request_actions.extend(ctx.principal, str(id), reason, expected_version)
        )

    @strawberry.mutation(description="Cancel (the subject while nothing runs, or staff).")
    async def cancel_privacy_request(
        self, info: Info, id: strawberry.ID, reason: str | None = None, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info, ctx.services.request_actions.cancel(ctx.principal, str(id), reason, expected_version)
        )

    @strawberry.mutation(description="Assign to a member of staff, or unassign with null (staff).")
    async def assign_privacy_request(
        self, info: Info, id: strawberry.ID, assignee: str | None, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info, ctx.services.request_actions.assign(ctx.principal, str(id), assignee, expected_version)
        )

    @strawberry.mutation(description="Mark an in-progress request as fulfilled (staff, until a worker does).")
    async def complete_privacy_request(
        self, info: Info, id: strawberry.ID, note: str | None = None, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info, ctx.services.request_actions.complete(ctx.principal, str(id), note, expected_version)
        )

    @strawberry.mutation(description="Run a FAILED request's fulfilment again (staff).")
    async def retry_privacy_request(
        self, info: Info, id: strawberry.ID, note: str | None = None, expected_version: int | None = None
    ) -> PrivacyRequestResult:
        ctx = info.context
        return await _acted(
            info, ctx.services.request_actions.retry(ctx.principal, str(id), note, expected_version)
        )


@strawberry.type
class RequestSubscription:
    @strawberry.subscription(
        description="Changes to one request, or to every request you may see when no id is given."
    )
    async def privacy_request_updated(
        self, info: Info, id: strawberry.ID | None = None
    ) -> AsyncGenerator[PrivacyRequestUpdate, None]:
        ctx = info.context
        async for event in ctx.services.events.subscribe(REQUEST_CHANNEL):
            request_id = str(event.get("requestId"))
            if id is not None and request_id != str(id):
                continue
            # Visibility is checked on every event, so a denial never reveals that a request exists.
            view = await ctx.services.request_queries.get(ctx.principal, request_id)
            if view is None:
                continue
            ctx.forget_loaded()
            note_access(info, "privacyRequestUpdated", view.request.subject_external_id, request_id)
            yield PrivacyRequestUpdate(
                request_id=strawberry.ID(request_id),
                action=str(event.get("action")),
                status=view.request.status,
                occurred_at=datetime.fromisoformat(str(event.get("occurredAt"))),
                request=PrivacyRequest.from_view(view),
            )

    @strawberry.subscription(description="At-risk and overdue alerts (staff).", permission_classes=[IsStaff])
    async def sla_alerts(self, info: Info) -> AsyncGenerator[SlaAlert, None]:
        async for alert in info.context.services.events.subscribe(SLA_ALERT_CHANNEL):
            assignee = alert.get("assignee")
            yield SlaAlert(
                request_id=strawberry.ID(str(alert["requestId"])),
                kind=SlaStatus(str(alert["kind"])),
                due_at=datetime.fromisoformat(str(alert["dueAt"])),
                raised_at=datetime.fromisoformat(str(alert["raisedAt"])),
                jurisdiction=Jurisdiction(str(alert["jurisdiction"])),
                assignee=str(assignee) if assignee else None,
            )


__all__ = ["RequestAction", "RequestMutation", "RequestQuery", "RequestSubscription"]
