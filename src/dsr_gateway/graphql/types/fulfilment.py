"""Fulfilment as clients see it: steps, legal holds, recipients told, the certificate, the package."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias, cast

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from dsr_gateway.domain import fulfilment as f
from dsr_gateway.graphql.context import Info
from dsr_gateway.services.fulfilment.queries import ExportPackageView, FulfilmentView
from dsr_gateway.services.fulfilment_ports import SystemDescription

StepStatus: TypeAlias = f.StepStatus
strawberry.enum(f.StepStatus, name="FulfilmentStepStatus")
strawberry.enum(f.Phase, name="FulfilmentPhase")


@strawberry.type(description="One step of a request's fulfilment: one system, one phase (staff).")
class FulfilmentStep:
    system: str = strawberry.field(description="The system's name in the systems file; `*` for all of them.")
    phase: f.Phase
    status: f.StepStatus
    attempts: int
    last_error: str | None = strawberry.field(description="Why the last attempt failed, naming the system.")
    next_attempt_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_domain(cls, step: f.FulfilmentStep) -> FulfilmentStep:
        waiting = step.status in (f.StepStatus.PENDING,)
        return cls(
            system=step.system,
            phase=step.phase,
            status=step.status,
            attempts=step.attempts,
            last_error=step.last_error,
            next_attempt_at=step.next_attempt_at if waiting else None,
            finished_at=step.finished_at,
        )


@strawberry.type(description="A legal hold an agent placed on an erasure request: the category is kept.")
class LegalHold:
    category: str
    reason: str
    placed_by: str
    placed_at: datetime


@strawberry.type(description="A system (and its recipients) told about a consent change (GDPR Art. 19).")
class RecipientNotification:
    system: str
    recipients: list[str]
    purposes: list[str]
    told: bool = strawberry.field(description="False when the system could not be told or has no endpoint.")
    status: f.StepStatus
    detail: str
    notified_at: datetime | None


@strawberry.type(description="The signed erasure certificate: a compact JWS (EdDSA) and its claims.")
class ErasureCertificate:
    token: str = strawberry.field(description="Verify it with the gateway's public key (JWKS).")
    claims: JSON
    issued_at: datetime | None


@strawberry.type(description="An access package: its signed download link expires.")
class ExportPackage:
    url: str
    expires_at: datetime
    download_count: int
    size: int
    sha256: str

    @classmethod
    def from_view(cls, view: ExportPackageView) -> ExportPackage:
        return cls(
            url=view.url,
            expires_at=view.expires_at,
            download_count=view.download_count,
            size=view.size,
            sha256=view.sha256,
        )


@strawberry.type(description="A data system declared in the systems file (staff).")
class DataSystem:
    name: str
    kind: str
    description: str
    categories: list[str]
    purposes: list[str]
    recipients: list[str]
    retention: str

    @classmethod
    def from_domain(cls, d: SystemDescription) -> DataSystem:
        return cls(
            name=d.name,
            kind=d.kind,
            description=d.description,
            categories=list(d.data_categories),
            purposes=list(d.purposes),
            recipients=list(d.recipients),
            retention=d.retention,
        )


def fulfilment_loader(info: Info) -> DataLoader[str, FulfilmentView]:
    ctx = info.context

    async def load(ids: Sequence[str]) -> list[FulfilmentView]:
        found = await ctx.services.fulfilment_queries.for_requests(ctx.principal, list(ids))
        return [found.get(i, FulfilmentView()) for i in ids]

    return ctx.loader("fulfilment", load)


async def request_fulfilment(info: Info, request_id: str) -> list[FulfilmentStep]:
    view = await fulfilment_loader(info).load(request_id)
    return [FulfilmentStep.from_domain(s) for s in view.steps]


async def request_legal_holds(info: Info, request_id: str) -> list[LegalHold]:
    view = await fulfilment_loader(info).load(request_id)
    return [LegalHold(category=h.category, reason=h.reason, placed_by=h.placed_by, placed_at=h.placed_at)
            for h in view.holds]  # fmt: skip


async def request_recipients(info: Info, request_id: str) -> list[RecipientNotification]:
    view = await fulfilment_loader(info).load(request_id)
    return [
        RecipientNotification(
            system=r.system,
            recipients=list(r.recipients),
            purposes=list(r.purposes),
            told=r.told,
            status=r.status,
            detail=r.detail,
            notified_at=r.notified_at,
        )
        for r in view.recipients
    ]


async def request_certificate(info: Info, request_id: str) -> ErasureCertificate | None:
    view = await fulfilment_loader(info).load(request_id)
    c = view.certificate
    if c is None:
        return None
    return ErasureCertificate(token=c.token, claims=cast(JSON, c.claims), issued_at=c.issued_at)


def export_loader(info: Info) -> DataLoader[str, ExportPackageView | None]:
    ctx = info.context

    async def load(ids: Sequence[str]) -> list[ExportPackageView | None]:
        found = await ctx.services.fulfilment_queries.export_packages(ctx.principal, list(ids))
        return [found.get(i) for i in ids]

    return ctx.loader("export_package", load)


async def request_export(info: Info, request_id: str) -> ExportPackage | None:
    view = await export_loader(info).load(request_id)
    return ExportPackage.from_view(view) if view else None
