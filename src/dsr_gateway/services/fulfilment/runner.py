"""The worker's step runner: claim a due step, run it with a lease kept alive, record the outcome, retry
with backoff, and settle the request (COMPLETE when every step is DONE, FAIL when one failed for good).

Every status change goes through RequestActionService (the workflow table); this module only changes
steps. A worker that dies mid-step leaves the step RUNNING with a lease; when the lease expires another
worker runs it again with the same idempotency key (`<request id>:<phase>.<system>`), which is why every
connector call must be idempotent. A settle pass on every loop completes requests whose last step finished
just before a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dsr_gateway.domain.errors import DomainError, NotFound
from dsr_gateway.domain.fulfilment import (
    FulfilmentStep,
    Phase,
    RetryPolicy,
    StepStatus,
    failure_reason,
    parse_step_key,
)
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.requests import RequestStatus, RequestType
from dsr_gateway.domain.workflow import Action, ActorRole
from dsr_gateway.services.exports import ExportService
from dsr_gateway.services.fulfilment.phases import PhaseRunner, StepContext, StepOutcome
from dsr_gateway.services.fulfilment_ports import ConnectorError, LegalHold, SubjectIdentifiers
from dsr_gateway.services.ports import Cipher, Clock, UnitOfWork, UnitOfWorkFactory
from dsr_gateway.services.requests.actions import CompletionLink, RequestActionService
from dsr_gateway.services.requests.common import email_of

logger = logging.getLogger("dsr_gateway.worker.fulfilment")
SYSTEM = Principal.system()


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    lease: timedelta = timedelta(minutes=5)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    steps_per_pass: int = 50
    callback_wait: timedelta = timedelta(hours=24)


@dataclass
class RunSummary:
    done: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0
    settled: int = 0


CallbackDecoder = Callable[[FulfilmentStep, StepContext], StepOutcome]


class FulfilmentRunner:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        actions: RequestActionService,
        phases: PhaseRunner,
        exports: ExportService,
        cipher: Cipher,
        config: RunnerConfig,
        configured_holds: Sequence[LegalHold] = (),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._actions = actions
        self._phases = phases
        self._exports = exports
        self._cipher = cipher
        self._config = config
        self._holds = tuple(configured_holds)

    async def run_due(self) -> RunSummary:
        """One pass: settle finished requests, then run due steps one at a time (a claim is one step, so
        a slow step never holds leases on others that another worker could run)."""
        summary = RunSummary()
        summary.settled += await self.settle()
        for _ in range(self._config.steps_per_pass):
            step = await self._claim_one()
            if step is None:
                break
            status = await self._run(step)
            if status is StepStatus.DONE:
                summary.done += 1
            elif status is StepStatus.WAITING:
                summary.waiting += 1
            elif status is StepStatus.FAILED:
                summary.failed += 1
            elif status is StepStatus.PENDING:
                summary.retrying += 1
        return summary

    async def _claim_one(self) -> FulfilmentStep | None:
        now = self._clock()
        async with self._uow() as uow:
            steps = await uow.fulfilment.claim_due(now, 1, now + self._config.lease, uuid.uuid4().hex)
            await uow.commit()
        return steps[0] if steps else None

    async def _context(self, uow: UnitOfWork, step: FulfilmentStep) -> StepContext:
        request = await uow.requests.get(step.request_id)
        if request is None:
            raise NotFound("privacy request", step.request_id)
        siblings = (await uow.fulfilment.for_requests([request.id])).get(request.id, [])
        placed = (await uow.fulfilment.holds([request.id])).get(request.id, [])
        events = (await uow.requests.events_for([request.id])).get(request.id, [])
        email = await email_of(uow, self._cipher, request)
        approver = next(
            (
                e.actor_id
                for e in reversed(events)
                if e.action in (Action.APPROVE, Action.RETRY) and e.actor_kind is not ActorRole.SYSTEM
            ),
            None,
        )
        # A request without a subject id is matched by email only: the placeholder matches no row.
        external_id = request.subject_external_id or f"urn:dsr-gateway:no-subject-id:{request.id}"
        holds = (
            *self._holds,
            *(LegalHold(h.category, h.reason, source=f"agent ({h.placed_by})") for h in placed),
        )
        return StepContext(request, SubjectIdentifiers(external_id, email), holds, tuple(siblings), approver)

    async def _run(self, step: FulfilmentStep) -> StepStatus:
        assert step.claim_token is not None
        async with self._uow() as uow:
            ctx = await self._context(uow, step)
        stop = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(step, stop))
        try:
            outcome = await self._phases.run(step, ctx)
        except ConnectorError as exc:
            return await self._failed(step, exc.message, exc.retryable)
        except Exception as exc:  # a bug or an unforeseen failure: retried, and logged with its traceback
            logger.exception("fulfilment step %s of request %s failed", step.key, step.request_id)
            return await self._failed(step, f"unexpected error ({type(exc).__name__})", True)
        finally:
            stop.set()
            await heartbeat
        now = self._clock()
        status = StepStatus.WAITING if outcome.waiting else StepStatus.DONE
        async with self._uow() as uow:
            kept = await uow.fulfilment.finish(
                step.id,
                step.claim_token,
                status,
                now=now,
                result=outcome.result,
                lease_until=now + self._config.callback_wait if outcome.waiting else None,
            )
            await uow.commit()
        if not kept:
            logger.warning(
                "step %s of request %s: the claim was lost to another worker", step.key, step.request_id
            )
        await self.settle_request(step.request_id)
        return status

    async def _failed(self, step: FulfilmentStep, error: str, retryable: bool) -> StepStatus:
        now = self._clock()
        policy = self._config.retry
        gives_up = policy.gives_up(step.attempts, retryable)
        status = StepStatus.FAILED if gives_up else StepStatus.PENDING
        async with self._uow() as uow:
            await uow.fulfilment.finish(
                step.id,
                step.claim_token,
                status,
                now=now,
                error=error,
                next_attempt_at=None if gives_up else now + policy.delay(step.attempts),
            )
            await uow.commit()
        logger.info(
            "step %s of request %s: attempt %d failed (%s)%s",
            step.key,
            step.request_id,
            step.attempts,
            error,
            "; giving up" if gives_up else "; will retry",
        )
        if gives_up:
            await self.settle_request(step.request_id)
        return status

    async def _heartbeat(self, step: FulfilmentStep, stop: asyncio.Event) -> None:
        """Keep the lease of a long step alive, so that only a dead worker's step is taken over."""
        interval = max(self._config.lease.total_seconds() / 3, 0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
            try:
                async with self._uow() as uow:
                    await uow.fulfilment.extend_lease(
                        step.id, step.claim_token or "", self._clock() + self._config.lease
                    )
                    await uow.commit()
            except Exception:
                logger.warning("could not extend the lease of step %s", step.key, exc_info=True)

    # --- settling a request -------------------------------------------------------------------------

    async def settle(self) -> int:
        async with self._uow() as uow:
            candidates = await uow.fulfilment.settle_candidates(100)
        settled = 0
        for request_id in candidates:
            settled += await self.settle_request(request_id)
        return settled

    async def settle_request(self, request_id: str) -> int:
        """COMPLETE when every step is DONE, FAIL when one FAILED; 1 when the request changed."""
        async with self._uow() as uow:
            request = await uow.requests.get(request_id)
            steps = (await uow.fulfilment.for_requests([request_id])).get(request_id, [])
        if request is None or request.status is not RequestStatus.IN_PROGRESS or not steps:
            return 0
        try:
            failed = [s for s in steps if s.status is StepStatus.FAILED]
            if failed:
                reason = failure_reason(failed[0], failed[0].last_error or "unknown error")
                await self._actions.fail(SYSTEM, request_id, reason)
                return 1
            if all(s.status is StepStatus.DONE for s in steps):
                link = await self._link(steps)
                await self._actions.complete_fulfilled(
                    SYSTEM, request_id, _all_done, completion_data(request.type, steps), link
                )
                return 1
        except DomainError as exc:  # a person acted first (retry, cancel): nothing to do
            logger.info("request %s not settled: %s", request_id, exc)
        return 0

    async def _link(self, steps: Sequence[FulfilmentStep]) -> CompletionLink | None:
        package = next((s for s in steps if s.phase is Phase.PACKAGE), None)
        if package is None or "exportId" not in package.result:
            return None
        record = await self._exports.record(str(package.result["exportId"]))
        if record is None:
            return None
        link = self._exports.link_for(record)
        return CompletionLink(link.url, link.expires_at)

    # --- callbacks ----------------------------------------------------------------------------------

    async def complete_callback(self, request_id: str, step_key: str, decode: CallbackDecoder) -> bool:
        """A system's callback finishes its WAITING (or still RUNNING) step. False when it was already
        done (a repeated callback changes nothing). NotFound for an unknown request or step."""
        parsed = parse_step_key(step_key)
        if parsed is None:
            raise NotFound("fulfilment step", step_key)
        phase, system = parsed
        async with self._uow() as uow:
            step = await uow.fulfilment.get_step(request_id, phase.value, system)
            if step is None:
                raise NotFound("fulfilment step", step_key)
            if step.status is StepStatus.DONE:
                return False
            ctx = await self._context(uow, step)
        outcome = decode(step, ctx)
        async with self._uow() as uow:
            finished = await uow.fulfilment.finish(
                step.id, None, StepStatus.DONE, now=self._clock(), result=outcome.result
            )
            await uow.commit()
        await self.settle_request(request_id)
        return finished


async def _all_done(uow: UnitOfWork, request: Any) -> bool:
    steps = (await uow.fulfilment.for_requests([request.id])).get(request.id, [])
    return bool(steps) and all(s.status is StepStatus.DONE for s in steps)


def completion_data(request_type: RequestType, steps: Sequence[FulfilmentStep]) -> dict[str, Any]:
    """What the COMPLETE event records: no personal values (rectifications are redacted as declared)."""
    data: dict[str, Any] = {"steps": len(steps)}
    for step in steps:
        if step.phase is Phase.PACKAGE:
            data["exportId"] = step.result.get("exportId")
        elif step.phase is Phase.RECTIFY:
            data.setdefault("rectifications", []).extend(step.result.get("fields", []))
        elif step.phase is Phase.ERASE:
            items = step.result.get("items", [])
            counts: dict[str, int] = {}
            for item in items:
                counts[item["action"]] = counts.get(item["action"], 0) + 1
            data.setdefault("erasure", []).append({"system": step.system, "summary": counts})
        elif step.phase is Phase.CERTIFICATE:
            data["certificateId"] = step.result.get("claims", {}).get("jti")
        elif step.phase is Phase.NOTIFY:
            data.setdefault("recipientsNotified", []).append(
                {
                    "system": step.system,
                    "told": step.result.get("told"),
                    "at": step.finished_at.isoformat() if step.finished_at else None,
                }
            )
    return data
