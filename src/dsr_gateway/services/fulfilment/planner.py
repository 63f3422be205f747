"""Planning a request's steps at approval, resetting failed ones at retry, and agents' legal holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dsr_gateway.domain.access import require_staff
from dsr_gateway.domain.errors import Conflict, FieldProblem, ValidationFailed
from dsr_gateway.domain.fulfilment import SystemInfo, plan_steps
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.requests import RequestStatus, RequestType, validate_note
from dsr_gateway.services.fulfilment.ports import PlacedHold
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from dsr_gateway.services.requests.common import not_found

BEFORE_APPROVAL = frozenset(
    {RequestStatus.SUBMITTED, RequestStatus.PENDING_REVIEW, RequestStatus.AWAITING_SUBJECT}
)
CATEGORY_MAX = 64


class FulfilmentPlanner:
    """The `FulfilmentHooks` of RequestActionService: runs inside the approval's or retry's transaction."""

    def __init__(self, systems: Sequence[SystemInfo]) -> None:
        self._systems = tuple(systems)

    async def plan(self, uow: UnitOfWork, request: PrivacyRequest, now: datetime) -> dict[str, Any]:
        purposes = request.details.get("purposes") or ()
        steps = plan_steps(request.type, self._systems, [str(p) for p in purposes])
        await uow.fulfilment.add_steps(request.id, steps, now)
        return {"fulfilmentSteps": [s.key for s in steps]} if steps else {}

    async def reset_failed(self, uow: UnitOfWork, request: PrivacyRequest, now: datetime) -> int:
        return await uow.fulfilment.reset_failed(request.id, now)


class LegalHoldService:
    """Holds an agent places on one erasure request before approval; they keep a data category."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, systems: Sequence[SystemInfo]) -> None:
        self._uow = uow
        self._clock = clock
        self._categories = sorted({c for s in systems for c in s.data_categories})

    async def place(
        self, principal: Principal, request_id: str, category: str, reason: str
    ) -> PrivacyRequest:
        require_staff(principal)
        text = validate_note(reason, "reason")
        problems: list[FieldProblem] = []
        if not text:
            problems.append(FieldProblem("reason", "Say why the data must be kept (the law or the claim)."))
        category = (category or "").strip()
        if category not in self._categories:
            known = ", ".join(self._categories) or "none (no systems file is configured)"
            problems.append(
                FieldProblem(
                    "category", f"No system declares data category {category!r}; use one of {known}."
                )
            )
        if problems:
            raise ValidationFailed(problems)
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            if request is None:
                raise not_found(request_id)
            if request.type is not RequestType.ERASURE:
                raise ValidationFailed.single(
                    "id", "A legal hold only changes what an erasure request erases."
                )
            if request.status not in BEFORE_APPROVAL:
                raise Conflict(
                    f"The request is {request.status}: place legal holds before approving it "
                    "(its erasure steps take the holds known at approval)."
                )
            assert text is not None
            await uow.fulfilment.add_hold(
                PlacedHold(request.id, category, text, principal.actor_label, self._clock())
            )
            await uow.commit()
        return request
