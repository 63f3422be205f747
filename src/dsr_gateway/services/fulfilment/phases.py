"""What each phase of a step does, with the connectors; and the JSON a step keeps as its result.

Results hold no personal data values except rectified ones, which are stored as `for_history()` gives them
(sensitive fields redacted). The package step keeps the export id, never the signed link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsr_gateway.domain.errors import Conflict, DomainError
from dsr_gateway.domain.fulfilment import ALL_SYSTEMS, FulfilmentStep, Phase, StepStatus
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.requests import RequestType
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_writes import WithdrawRequest
from dsr_gateway.services.erasure_certificate import issue_certificate
from dsr_gateway.services.exports import ExportService
from dsr_gateway.services.fulfilment_ports import (
    CertificateSigner,
    Connector,
    ConsentChange,
    ConsentNotification,
    ErasureAction,
    ErasureResult,
    FieldErasure,
    LegalHold,
    PermanentConnectorError,
    RectifyResult,
    RetryableConnectorError,
    StepRef,
    SubjectIdentifiers,
    SystemDescription,
)
from dsr_gateway.services.ports import Clock

GATEWAY = "gateway"
CONSENT_CHANGES = {
    RequestType.RESTRICTION: ConsentChange.RESTRICTED,
    RequestType.OBJECTION: ConsentChange.OBJECTED,
    RequestType.CONSENT_REVOCATION: ConsentChange.WITHDRAWN,
}


@dataclass(frozen=True, slots=True)
class StepContext:
    """Everything a step needs, loaded before the call (no transaction stays open during it)."""

    request: PrivacyRequest
    subject: SubjectIdentifiers
    holds: tuple[LegalHold, ...]
    siblings: tuple[FulfilmentStep, ...]
    approver: str | None = None


@dataclass(frozen=True, slots=True)
class StepOutcome:
    result: dict[str, Any]
    waiting: bool = False  # an HTTP system answered 202: its callback finishes the step
    extra: dict[str, Any] = field(default_factory=dict)


def erasure_json(result: ErasureResult) -> dict[str, Any]:
    return {"items": [i.to_json() for i in result.items], "pending": result.pending}


def erasure_from_json(system: str, data: Mapping[str, Any]) -> ErasureResult:
    items = tuple(
        FieldErasure(
            str(i["table"]),
            i.get("field"),
            ErasureAction(i["action"]),
            int(i.get("rows") or 0),
            i.get("category"),
            i.get("reason"),
        )
        for i in data.get("items", ())
    )
    return ErasureResult(system, items, pending=bool(data.get("pending")))


def rectify_json(result: RectifyResult) -> dict[str, Any]:
    return {"fields": [f.for_history() for f in result.fields], "pending": result.pending}


def notify_json(result: ConsentNotification, recipients: Sequence[str]) -> dict[str, Any]:
    return {
        "told": result.told,
        "detail": result.detail,
        "purposes": list(result.purposes),
        "change": result.change.value,
        "recipients": list(recipients),
        "pending": result.pending,
    }


def requested_purposes(request: PrivacyRequest) -> list[str]:
    return [str(p) for p in request.details.get("purposes") or ()]


class PhaseRunner:
    def __init__(
        self,
        connectors: Mapping[str, Connector],
        systems: Sequence[SystemDescription],
        exports: ExportService,
        consent: ConsentService,
        signer: CertificateSigner,
        issuer: str,
        clock: Clock,
    ) -> None:
        self._connectors = connectors
        self._systems = {s.name: s for s in systems}
        self._exports = exports
        self._consent = consent
        self._signer = signer
        self._issuer = issuer
        self._clock = clock

    def connector(self, system: str) -> Connector:
        connector = self._connectors.get(system)
        if connector is None:
            raise PermanentConnectorError(system, "no connector is configured for this system any more")
        return connector

    def system(self, name: str) -> SystemDescription | None:
        return self._systems.get(name)

    async def run(self, step: FulfilmentStep, ctx: StepContext) -> StepOutcome:
        ref = StepRef(ctx.request.id, step.key)
        if step.phase is Phase.PACKAGE:
            return await self._package(ctx)
        if step.phase is Phase.RECTIFY:
            changes = {str(c["field"]): c["requestedValue"] for c in ctx.request.details.get("changes", ())}
            rectified = await self.connector(step.system).rectify(ctx.subject, changes, ref)
            return StepOutcome(rectify_json(rectified), waiting=rectified.pending)
        if step.phase is Phase.ERASE:
            holds = (*ctx.holds, *self.scope_holds(ctx.request))
            erased = await self.connector(step.system).erase(ctx.subject, holds, ref)
            return StepOutcome(erasure_json(erased), waiting=erased.pending)
        if step.phase is Phase.CERTIFICATE:
            return self._certificate(ctx)
        if step.phase is Phase.CONSENT:
            return await self._record_consent(ctx)
        return await self._notify(step, ctx, ref)

    async def _package(self, ctx: StepContext) -> StepOutcome:
        sources = [(d, self._connectors[n]) for n, d in self._systems.items() if n in self._connectors]
        link = await self._exports.create_package(ctx.request.id, ctx.subject, sources)
        return StepOutcome(
            {
                "exportId": link.export_id,
                "expiresAt": link.expires_at.isoformat(),
                "size": link.size,
                "sha256": link.sha256,
                "systems": [d.name for d, _ in sources],
            }
        )

    def scope_holds(self, request: PrivacyRequest) -> list[LegalHold]:
        """An erasure of named categories keeps every other category: as holds, so connectors obey them."""
        wanted = request.details.get("categories") or []
        if request.details.get("all") or not wanted:
            return []
        every = {c for s in self._systems.values() for c in s.data_categories}
        reason = "not named in this erasure request"
        return [LegalHold(c, reason, source="request scope") for c in sorted(every - set(wanted))]

    def _certificate(self, ctx: StepContext) -> StepOutcome:
        results = [
            erasure_from_json(s.system, s.result)
            for s in ctx.siblings
            if s.phase is Phase.ERASE and s.status is StepStatus.DONE
        ]
        holds = (*ctx.holds, *self.scope_holds(ctx.request))
        claims, token = issue_certificate(
            self._signer, ctx.request.id, self._issuer, self._clock(), results, holds
        )
        return StepOutcome({"claims": claims, "token": token})

    async def _record_consent(self, ctx: StepContext) -> StepOutcome:
        """The ledger records the change as the approving agent (method AGENT): the subject asked, in the
        request, and an agent accepted it. Idempotency keys per request and purpose make a rerun harmless."""
        external_id = ctx.request.subject_external_id
        if external_id is None:
            raise PermanentConnectorError(
                GATEWAY, "the request names no subject id, so the consent ledger cannot record the change"
            )
        agent = Principal(PrincipalKind.STAFF, id=ctx.approver or "system", roles=frozenset({Role.AGENT}))
        purposes = requested_purposes(ctx.request)
        events = 0
        try:
            targets: list[str | None] = list(purposes) or [None]
            for purpose in targets:
                key = f"dsr:{ctx.request.id}:{purpose or '*'}"
                change = await self._consent.withdraw(
                    agent, WithdrawRequest(external_id, purpose, idempotency_key=key)
                )
                events += len(change.events)
        except Conflict as exc:
            # The subject held by a longer change (an import) past the lock timeout, or the write given up
            # for concurrent ones: nothing recorded; the step is tried again later.
            raise RetryableConnectorError(
                GATEWAY, f"the consent ledger could not record it now: {exc}"
            ) from exc
        except DomainError as exc:
            raise PermanentConnectorError(GATEWAY, f"the consent ledger refused the change: {exc}") from exc
        return StepOutcome({"purposes": purposes or ["*"], "events": events})

    async def _notify(self, step: FulfilmentStep, ctx: StepContext, ref: StepRef) -> StepOutcome:
        described = self._systems.get(step.system)
        used = list(described.purposes) if described else []
        wanted = requested_purposes(ctx.request)
        purposes = [p for p in used if p in wanted] if wanted else used
        change = CONSENT_CHANGES.get(ctx.request.type, ConsentChange.WITHDRAWN)
        told = await self.connector(step.system).notify_consent_change(ctx.subject, purposes, change, ref)
        recipients = described.recipients if described else ()
        return StepOutcome(notify_json(told, recipients), waiting=told.pending)


def is_cross_system(step: FulfilmentStep) -> bool:
    return step.system == ALL_SYSTEMS
