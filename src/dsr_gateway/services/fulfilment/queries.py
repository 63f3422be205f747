"""Reading fulfilment: steps, holds, recipients told, the certificate, the export package, the systems."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dsr_gateway.domain.access import require_staff
from dsr_gateway.domain.fulfilment import FulfilmentStep, Phase, StepStatus
from dsr_gateway.domain.principal import Principal
from dsr_gateway.services.exports import ExportService
from dsr_gateway.services.fulfilment.ports import PlacedHold
from dsr_gateway.services.fulfilment_ports import SystemDescription
from dsr_gateway.services.ports import UnitOfWorkFactory
from dsr_gateway.services.requests.common import may_see

EXPORT_READ = "export:read"


@dataclass(frozen=True, slots=True)
class RecipientNotified:
    system: str
    recipients: tuple[str, ...]
    purposes: tuple[str, ...]
    told: bool
    status: StepStatus
    detail: str
    notified_at: datetime | None


@dataclass(frozen=True, slots=True)
class Certificate:
    token: str
    claims: dict[str, Any]
    issued_at: datetime | None


@dataclass(frozen=True, slots=True)
class FulfilmentView:
    """What a reader may see of one request's fulfilment (staff see steps and holds; the subject the rest)."""

    steps: tuple[FulfilmentStep, ...] = ()
    holds: tuple[PlacedHold, ...] = ()
    recipients: tuple[RecipientNotified, ...] = ()
    certificate: Certificate | None = None
    export_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportPackageView:
    url: str
    expires_at: datetime
    download_count: int
    size: int
    sha256: str


class FulfilmentQueryService:
    def __init__(
        self, uow: UnitOfWorkFactory, exports: ExportService, systems: Sequence[SystemDescription]
    ) -> None:
        self._uow = uow
        self._exports = exports
        self._systems = tuple(systems)

    def data_systems(self, principal: Principal) -> tuple[SystemDescription, ...]:
        require_staff(principal)
        return self._systems

    async def for_requests(
        self, principal: Principal, request_ids: Collection[str]
    ) -> dict[str, FulfilmentView]:
        """One batch for any number of requests (a DataLoader calls it): three statements."""
        async with self._uow() as uow:
            requests = await uow.requests.many(request_ids)
            visible = [r.id for r in requests.values() if may_see(principal, r)]
            steps = await uow.fulfilment.for_requests(visible)
            holds = await uow.fulfilment.holds(visible) if principal.is_staff else {}
        return {rid: _view(principal, steps.get(rid, []), holds.get(rid, [])) for rid in visible}

    async def export_packages(
        self, principal: Principal, request_ids: Collection[str]
    ) -> dict[str, ExportPackageView]:
        """The access packages of many requests (a DataLoader calls it): three statements for any number.
        Staff, API clients with export:read and each request's own subject read them."""
        async with self._uow() as uow:
            requests = await uow.requests.many(request_ids)
            readable = [
                r.id for r in requests.values() if may_see(principal, r) or principal.has_scope(EXPORT_READ)
            ]
            steps = await uow.fulfilment.for_requests(readable)
        export_ids: dict[str, str] = {}
        for request_id in readable:
            package = next(
                (
                    s
                    for s in steps.get(request_id, [])
                    if s.phase is Phase.PACKAGE and s.status is StepStatus.DONE
                ),
                None,
            )
            if package is not None:
                export_ids[request_id] = str(package.result.get("exportId"))
        records = await self._exports.records(set(export_ids.values())) if export_ids else {}
        views: dict[str, ExportPackageView] = {}
        for request_id, export_id in export_ids.items():
            record = records.get(export_id)
            if record is not None:
                link = self._exports.link_for(record)
                views[request_id] = ExportPackageView(
                    link.url, record.expires_at, record.download_count, record.size, record.sha256
                )
        return views


def _view(
    principal: Principal, steps: Sequence[FulfilmentStep], holds: Sequence[PlacedHold]
) -> FulfilmentView:
    recipients = tuple(
        RecipientNotified(
            s.system,
            tuple(s.result.get("recipients", ())),
            tuple(s.result.get("purposes", ())),
            bool(s.result.get("told")) and s.status is StepStatus.DONE,
            s.status,
            str(s.result.get("detail", "")),
            s.finished_at if s.status is StepStatus.DONE else None,
        )
        for s in steps
        if s.phase is Phase.NOTIFY
    )
    cert_step = next((s for s in steps if s.phase is Phase.CERTIFICATE and s.status is StepStatus.DONE), None)
    certificate = (
        Certificate(
            str(cert_step.result["token"]), dict(cert_step.result.get("claims", {})), cert_step.finished_at
        )
        if cert_step is not None and "token" in cert_step.result
        else None
    )
    package = next((s for s in steps if s.phase is Phase.PACKAGE and s.status is StepStatus.DONE), None)
    return FulfilmentView(
        steps=tuple(steps) if principal.is_staff else (),
        holds=tuple(holds),
        recipients=recipients,
        certificate=certificate,
        export_id=str(package.result.get("exportId")) if package else None,
    )
