"""What clients see of the audit trail: verification results, checkpoints, consent receipts."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dsr_gateway.domain.audit_checkpoint import CheckpointFinding
from dsr_gateway.domain.receipts import StoredReceipt
from dsr_gateway.services.audit import AuditVerification as DomainVerification
from dsr_gateway.services.audit_ports import StoredCheckpoint


@strawberry.type(description="The first event of a chain that does not verify, and why.")
class ChainBreak:
    chain: str = strawberry.field(description="`consent:<subject id>` or `request:<request id>`.")
    event_id: str
    sequence: int | None
    problem: str = strawberry.field(
        description="HASH_MISMATCH, PREV_HASH_MISMATCH, SEQUENCE_GAP, SEQUENCE_OUT_OF_ORDER, UNSEALED, "
        "MALFORMED."
    )
    detail: str


@strawberry.type(description="A signed checkpoint that the stored data no longer matches.")
class CheckpointIssue:
    checkpoint_id: int
    problem: str = strawberry.field(
        description="BAD_SIGNATURE, ROOT_MISMATCH, CHAIN_OF_CHECKPOINTS_BROKEN, CHAIN_MISSING, TRUNCATED, "
        "REWRITTEN."
    )
    chain: str | None
    detail: str

    @classmethod
    def from_domain(cls, finding: CheckpointFinding) -> CheckpointIssue:
        return cls(
            checkpoint_id=finding.checkpoint_id,
            problem=finding.problem.value,
            chain=finding.chain_key,
            detail=finding.detail,
        )


@strawberry.type(description="Every hash chain re-checked from its first event, and every checkpoint.")
class AuditVerification:
    ok: bool
    chains_checked: int
    events_checked: int
    checkpoints_checked: int
    broken_chains: int
    first_break: ChainBreak | None
    checkpoint_issues: list[CheckpointIssue]

    @classmethod
    def from_domain(cls, report: DomainVerification) -> AuditVerification:
        first = report.first_break
        return cls(
            ok=report.ok,
            chains_checked=report.chains_checked,
            events_checked=report.events_checked,
            checkpoints_checked=report.checkpoints_checked,
            broken_chains=report.broken_chains,
            first_break=ChainBreak(
                chain=first.chain_key,
                event_id=first.event_id,
                sequence=first.sequence,
                problem=first.problem.value,
                detail=first.detail,
            )
            if first
            else None,
            checkpoint_issues=[CheckpointIssue.from_domain(f) for f in report.checkpoint_findings],
        )


@strawberry.type(description="The signed heads of every chain at one moment.")
class AuditCheckpoint:
    id: int
    created_at: datetime
    chains: int
    root: str = strawberry.field(description="RFC 6962 Merkle root (hex) over the sorted chain heads.")
    key_id: str
    jws: str = strawberry.field(description="Compact JWS (EdDSA); verify with /.well-known/jwks.json.")

    @classmethod
    def from_domain(cls, checkpoint: StoredCheckpoint) -> AuditCheckpoint:
        return cls(
            id=checkpoint.id,
            created_at=checkpoint.created_at,
            chains=len(checkpoint.heads),
            root=checkpoint.root,
            key_id=checkpoint.key_id,
            jws=checkpoint.jws,
        )


@strawberry.type(description="A signed consent receipt (Kantara CR v1.1 claims in a compact JWS).")
class ConsentReceipt:
    receipt_id: str = strawberry.field(description="The receipt's consentReceiptID.")
    created_at: datetime
    jws: str = strawberry.field(description="Compact JWS (EdDSA); verify with /.well-known/jwks.json.")

    @classmethod
    def from_domain(cls, receipt: StoredReceipt) -> ConsentReceipt:
        return cls(receipt_id=receipt.receipt_id, created_at=receipt.created_at, jws=receipt.jws)
