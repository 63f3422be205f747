"""Fulfilment steps: which steps an approved request runs, in what order, and how failures are retried.

A request is fulfilled as steps, one per system per phase. Steps of a lower `stage` must all be DONE before
a step of a higher stage may run (the erasure certificate waits for every erasure, the subject's consent
change is recorded in the ledger before any system is told). Pure rules only: the worker
(services/fulfilment) claims and runs the steps, db/ stores them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dsr_gateway.domain.requests import RequestType
from dsr_gateway.domain.retry import backoff

ALL_SYSTEMS = "*"  # the `system` of a step that spans every system (the package, the certificate)


class StepStatus(StrEnum):
    PENDING = "PENDING"  # waiting to be claimed (first run, or a retry after its backoff)
    RUNNING = "RUNNING"  # claimed by a worker until `lease_until`; re-claimed when the lease expires
    WAITING = "WAITING"  # an HTTP system answered 202: its callback completes the step
    DONE = "DONE"
    FAILED = "FAILED"  # the retry budget is spent, or the error cannot be fixed by trying again


class Phase(StrEnum):
    PACKAGE = "package"  # ACCESS, PORTABILITY: every system streamed into one package
    RECTIFY = "rectify"
    ERASE = "erase"
    CERTIFICATE = "certificate"  # after every ERASE step: the signed erasure certificate
    CONSENT = "consent"  # RESTRICTION, OBJECTION, CONSENT_REVOCATION: the ledger records the change
    NOTIFY = "notify"  # then every system using the purposes is told (GDPR Art. 19)


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """What planning needs to know about a declared system."""

    name: str
    kind: str  # "sql" | "http" | "gateway"
    purposes: tuple[str, ...] = ()
    data_categories: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedStep:
    phase: Phase
    system: str
    stage: int

    @property
    def key(self) -> str:
        """The step's name in idempotency keys and callback URLs: `erase.crm`, `package.*` ..."""
        return step_key(self.phase, self.system)


def step_key(phase: Phase | str, system: str) -> str:
    return f"{Phase(phase).value}.{system}"


def parse_step_key(key: str) -> tuple[Phase, str] | None:
    phase, _, system = key.partition(".")
    try:
        return Phase(phase), system
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class FulfilmentStep:
    id: int
    request_id: str
    phase: Phase
    system: str
    stage: int
    status: StepStatus
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    claim_token: str | None
    last_error: str | None
    result: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def key(self) -> str:
        return step_key(self.phase, self.system)


def plan_steps(
    request_type: RequestType, systems: Sequence[SystemInfo], purposes: Sequence[str] = ()
) -> list[PlannedStep]:
    """The steps of a request, one per system per phase. No systems declared: no steps (manual work).

    `purposes` are the purposes a RESTRICTION/OBJECTION/CONSENT_REVOCATION names (empty: every purpose).
    """
    if not systems:
        return []
    t = RequestType(request_type)
    if t in (RequestType.ACCESS, RequestType.PORTABILITY):
        # One step streams every system into one package: see docs/fulfilment.md ("Why one package step").
        return [PlannedStep(Phase.PACKAGE, ALL_SYSTEMS, 0)]
    if t is RequestType.RECTIFICATION:
        return [PlannedStep(Phase.RECTIFY, s.name, 0) for s in systems]
    if t is RequestType.ERASURE:
        steps = [PlannedStep(Phase.ERASE, s.name, 0) for s in systems]
        return [*steps, PlannedStep(Phase.CERTIFICATE, ALL_SYSTEMS, 1)]
    wanted = set(purposes)
    told = [s for s in systems if s.kind != "gateway" and (not wanted or wanted & set(s.purposes))]
    return [
        PlannedStep(Phase.CONSENT, ALL_SYSTEMS, 0),
        *(PlannedStep(Phase.NOTIFY, s.name, 1) for s in told),
    ]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; `max_attempts` runs in all before the step FAILS."""

    max_attempts: int = 6
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    jitter: float = 0.5  # the delay is drawn from [d * (1 - jitter), d]

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """The wait after the `attempts`-th failed run: base, 2 base, 4 base ... capped, with jitter."""
        base, cap = timedelta(seconds=self.base_seconds), timedelta(seconds=self.cap_seconds)
        return backoff(attempts, base, cap, self.jitter, (rng or random).random())

    def gives_up(self, attempts: int, retryable: bool) -> bool:
        return not retryable or attempts >= self.max_attempts


def failure_reason(step: FulfilmentStep, error: str) -> str:
    """The FAIL event's reason: which system, which phase, what went wrong (an agent acts on it)."""
    where = "every system" if step.system == ALL_SYSTEMS else f"system {step.system}"
    return f"{step.phase.value} step failed in {where} after {step.attempts} attempt(s): {error}"[:2000]
