"""Fulfilment steps and agents' legal holds (SQLAlchemy Core on the unit of work's connection).

Claiming: on PostgreSQL `FOR UPDATE OF fulfilment_step SKIP LOCKED`, so concurrent workers never take the
same step; on SQLite the single writer serialises claims. Either way a claim is a lease: a RUNNING step whose
`lease_until` has passed (its worker died) is due again, and `claim_token` makes sure only the current
claim can record the step's outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.tables.fulfilment_steps import FulfilmentStepRow, RequestLegalHoldRow
from dsr_gateway.db.tables.requests import PrivacyRequestRow
from dsr_gateway.domain.errors import Conflict
from dsr_gateway.domain.fulfilment import FulfilmentStep, Phase, PlannedStep, StepStatus
from dsr_gateway.domain.requests import RequestStatus
from dsr_gateway.services.fulfilment.ports import PlacedHold

S = FulfilmentStepRow.__table__  # type: ignore[attr-defined]
H = RequestLegalHoldRow.__table__  # type: ignore[attr-defined]
R = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
IN_PROGRESS = RequestStatus.IN_PROGRESS.value


def _step(row: RowMapping) -> FulfilmentStep:
    return FulfilmentStep(
        id=row["id"],
        request_id=row["request_id"],
        phase=Phase(row["phase"]),
        system=row["system"],
        stage=row["stage"],
        status=StepStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        lease_until=row["lease_until"],
        claim_token=row["claim_token"],
        last_error=row["last_error"],
        result=dict(row["result"] or {}),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


class SqlFulfilmentStepRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _connection(self) -> AsyncConnection:
        return await self._session.connection()

    async def add_steps(self, request_id: str, steps: Sequence[PlannedStep], now: datetime) -> None:
        if not steps:
            return
        existing = {
            (r["phase"], r["system"])
            for r in (
                await (await self._connection()).execute(
                    select(S.c.phase, S.c.system).where(S.c.request_id == request_id)
                )
            ).mappings()
        }
        rows: list[dict[str, Any]] = [
            {
                "request_id": request_id,
                "phase": s.phase.value,
                "system": s.system,
                "stage": s.stage,
                "status": StepStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "result": {},
                "created_at": now,
            }
            for s in steps
            if (s.phase.value, s.system) not in existing
        ]
        if rows:
            await (await self._connection()).execute(S.insert(), rows)

    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime, token: str
    ) -> list[FulfilmentStep]:
        """Take up to `limit` runnable steps: due, of an IN_PROGRESS request, every earlier stage DONE."""
        earlier = S.alias("earlier")
        blocked = exists().where(
            earlier.c.request_id == S.c.request_id,
            earlier.c.stage < S.c.stage,
            earlier.c.status != StepStatus.DONE.value,
        )
        due = or_(
            and_(S.c.status == StepStatus.PENDING.value, S.c.next_attempt_at <= now),
            # A crashed worker's step, or a callback that never came: run it again (same idempotency key).
            and_(
                S.c.status.in_([StepStatus.RUNNING.value, StepStatus.WAITING.value]), S.c.lease_until <= now
            ),
        )
        query = (
            select(S.c.id)
            .select_from(S.join(R, R.c.id == S.c.request_id))
            .where(due, R.c.status == IN_PROGRESS, ~blocked)
            .order_by(S.c.next_attempt_at, S.c.id)
            .limit(limit)
        )
        connection = await self._connection()
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=S)
        ids = list((await connection.execute(query)).scalars())
        if not ids:
            return []
        await connection.execute(
            update(S)
            .where(S.c.id.in_(ids))
            .values(
                status=StepStatus.RUNNING.value,
                attempts=S.c.attempts + 1,
                lease_until=lease_until,
                claim_token=token,
            )
        )
        rows = (await connection.execute(select(S).where(S.c.id.in_(ids)).order_by(S.c.id))).mappings()
        return [_step(r) for r in rows]

    async def extend_lease(self, step_id: int, token: str, until: datetime) -> bool:
        result = await (await self._connection()).execute(
            update(S)
            .where(S.c.id == step_id, S.c.claim_token == token, S.c.status == StepStatus.RUNNING.value)
            .values(lease_until=until)
        )
        return bool(result.rowcount)

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
    ) -> bool:
        """Record a claim's outcome; False when the claim was lost (its lease expired and another took it)."""
        values: dict[str, Any] = {"status": status.value, "last_error": error, "lease_until": lease_until}
        if result is not None:
            values["result"] = dict(result)
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if status in (StepStatus.DONE, StepStatus.FAILED):
            values["finished_at"] = now
            values["claim_token"] = None
        where = [S.c.id == step_id, S.c.status != StepStatus.DONE.value]
        if token is not None:
            where.append(S.c.claim_token == token)
        outcome = await (await self._connection()).execute(update(S).where(*where).values(**values))
        return bool(outcome.rowcount)

    async def for_requests(self, request_ids: Collection[str]) -> dict[str, list[FulfilmentStep]]:
        found: dict[str, list[FulfilmentStep]] = defaultdict(list)
        if request_ids:
            rows = (
                await (await self._connection()).execute(
                    select(S).where(S.c.request_id.in_(list(request_ids))).order_by(S.c.stage, S.c.id)
                )
            ).mappings()
            for r in rows:
                found[r["request_id"]].append(_step(r))
        return found

    async def get_step(self, request_id: str, phase: str, system: str) -> FulfilmentStep | None:
        rows = list(
            (
                await (await self._connection()).execute(
                    select(S).where(S.c.request_id == request_id, S.c.phase == phase, S.c.system == system)
                )
            ).mappings()
        )
        return _step(rows[0]) if rows else None

    async def reset_failed(self, request_id: str, now: datetime) -> int:
        """A retry: only FAILED steps run again, with a fresh budget; DONE steps stay done."""
        result = await (await self._connection()).execute(
            update(S)
            .where(S.c.request_id == request_id, S.c.status == StepStatus.FAILED.value)
            .values(
                status=StepStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                lease_until=None,
                claim_token=None,
                finished_at=None,
            )
        )
        return int(result.rowcount or 0)

    async def settle_candidates(self, limit: int) -> list[str]:
        """IN_PROGRESS requests whose steps are all DONE (to complete) or of which one FAILED (to fail)."""
        not_done = func.sum(case((S.c.status != StepStatus.DONE.value, 1), else_=0))
        failed = func.sum(case((S.c.status == StepStatus.FAILED.value, 1), else_=0))
        query = (
            select(S.c.request_id)
            .select_from(S.join(R, R.c.id == S.c.request_id))
            .where(R.c.status == IN_PROGRESS)
            .group_by(S.c.request_id)
            .having(or_(not_done == 0, failed > 0))
            .limit(limit)
        )
        return list((await (await self._connection()).execute(query)).scalars())

    async def add_hold(self, hold: PlacedHold) -> None:
        try:
            async with self._session.begin_nested():
                await (await self._connection()).execute(
                    H.insert().values(
                        request_id=hold.request_id,
                        category=hold.category,
                        reason=hold.reason,
                        placed_by=hold.placed_by,
                        placed_at=hold.placed_at,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A legal hold on {hold.category!r} is already placed on this request.") from exc

    async def holds(self, request_ids: Collection[str]) -> dict[str, list[PlacedHold]]:
        found: dict[str, list[PlacedHold]] = defaultdict(list)
        if request_ids:
            rows = (
                await (await self._connection()).execute(
                    select(H).where(H.c.request_id.in_(list(request_ids))).order_by(H.c.id)
                )
            ).mappings()
            for r in rows:
                found[r["request_id"]].append(
                    PlacedHold(r["request_id"], r["category"], r["reason"], r["placed_by"], r["placed_at"])
                )
        return found
