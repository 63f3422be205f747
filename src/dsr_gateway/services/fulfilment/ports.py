"""What the fulfilment services need from storage: the steps of each request and agents' legal holds."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dsr_gateway.domain.fulfilment import FulfilmentStep, PlannedStep, StepStatus


@dataclass(frozen=True, slots=True)
class PlacedHold:
    request_id: str
    category: str
    reason: str
    placed_by: str
    placed_at: datetime


class FulfilmentStepRepository(Protocol):
    async def add_steps(self, request_id: str, steps: Sequence[PlannedStep], now: datetime) -> None: ...
    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime, token: str
    ) -> list[FulfilmentStep]: ...
    async def extend_lease(self, step_id: int, token: str, until: datetime) -> bool: ...
    async def finish(
        self,
        step_id: int,
        token: str | None,
        status: StepStatus,
        *,
        now: datetime,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        lease_until: datetime | None = None,
    ) -> bool: ...
    async def for_requests(self, request_ids: Collection[str]) -> dict[str, list[FulfilmentStep]]: ...
    async def get_step(self, request_id: str, phase: str, system: str) -> FulfilmentStep | None: ...
    async def reset_failed(self, request_id: str, now: datetime) -> int: ...
    async def settle_candidates(self, limit: int) -> list[str]: ...
    async def add_hold(self, hold: PlacedHold) -> None: ...
    async def holds(self, request_ids: Collection[str]) -> dict[str, list[PlacedHold]]: ...
