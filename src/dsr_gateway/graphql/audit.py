"""Root fields of the audit trail: verification and receipts (reads), checkpoints (admin)."""

from __future__ import annotations

import base64
import json
from typing import Annotated

import strawberry

from dsr_gateway.domain.errors import DomainError
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import ConflictError, PermissionDeniedError, error_from_domain
from dsr_gateway.graphql.observability import note_access
from dsr_gateway.graphql.permissions import IsStaff
from dsr_gateway.graphql.types.audit import AuditCheckpoint, AuditVerification, ConsentReceipt


@strawberry.type
class CreateAuditCheckpointSuccess:
    checkpoint: AuditCheckpoint


CreateAuditCheckpointResult = Annotated[
    CreateAuditCheckpointSuccess | PermissionDeniedError | ConflictError,
    strawberry.union("CreateAuditCheckpointResult"),
]


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Re-check every hash chain and signed checkpoint; report the first broken event (staff).",
        permission_classes=[IsStaff],
    )
    async def audit_verification(self, info: Info) -> AuditVerification:
        report = await info.context.services.audit.verify(info.context.principal)
        return AuditVerification.from_domain(report)

    @strawberry.field(
        description="One consent receipt by its id: its subject, staff, or consent:read clients."
    )
    async def consent_receipt(self, info: Info, receipt_id: str) -> ConsentReceipt | None:
        try:
            receipt = await info.context.services.receipts.get(info.context.principal, receipt_id)
        except DomainError:
            return None
        note_access(info, "consentReceipt", _principal_of(receipt.jws))
        return ConsentReceipt.from_domain(receipt)


def _principal_of(jws: str) -> str | None:
    """The receipt's piiPrincipalId (the subject's external id), from the payload we signed."""
    try:
        payload = jws.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["piiPrincipalId"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


@strawberry.type
class AuditMutation:
    @strawberry.mutation(description="Sign the current head of every chain now (admin).")
    async def create_audit_checkpoint(self, info: Info) -> CreateAuditCheckpointResult:
        try:
            checkpoint = await info.context.services.audit.create_checkpoint(info.context.principal)
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return CreateAuditCheckpointSuccess(checkpoint=AuditCheckpoint.from_domain(checkpoint))
