"""Privacy requests, their history, pauses and SLA alerts: rows <-> domain objects (SQLAlchemy Core)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.repositories.chain_sealing import REQUEST_SEALER
from dsr_gateway.db.tables.identity import SubjectIdentityRow
from dsr_gateway.db.tables.requests import (
    PrivacyRequestEventRow,
    PrivacyRequestRow,
    RequestPauseRow,
    SlaAlertRow,
)
from dsr_gateway.db.tables.subjects import SubjectRow
from dsr_gateway.domain.errors import Conflict, StaleVersion
from dsr_gateway.domain.privacy_requests import PrivacyRequest, QueueCursor, QueueFilter, QueuePage
from dsr_gateway.domain.requests import RequestStatus, RequestType
from dsr_gateway.domain.sla import Pause
from dsr_gateway.domain.sla_rules import Jurisdiction
from dsr_gateway.domain.workflow import Action, ActorRole, RequestEvent

R = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
E = PrivacyRequestEventRow.__table__  # type: ignore[attr-defined]
P = RequestPauseRow.__table__  # type: ignore[attr-defined]
ALERT = SlaAlertRow.__table__  # type: ignore[attr-defined]
SUBJ = SubjectRow.__table__  # type: ignore[attr-defined]
IDENT = SubjectIdentityRow.__table__  # type: ignore[attr-defined]
OPEN_STATUSES = [s.value for s in RequestStatus if s.is_open]


def _select() -> Select[Any]:
    return select(R, SUBJ.c.external_id.label("subject_external_id")).select_from(
        R.outerjoin(SUBJ, SUBJ.c.id == R.c.subject_id)
    )


def _request(row: RowMapping) -> PrivacyRequest:
    return PrivacyRequest(
        id=row["id"],
        type=RequestType(row["type"]),
        status=RequestStatus(row["status"]),
        jurisdiction=Jurisdiction(row["jurisdiction"]),
        subject_id=row["subject_id"],
        subject_external_id=row["subject_external_id"],
        identity_id=row["identity_id"],
        details=dict(row["details"]),
        received_at=row["received_at"],
        idempotency_key=row["idempotency_key"],
        duplicate_of=row["duplicate_of"],
        assignee=row["assignee"],
        submitted_by=row["submitted_by"],
        version=row["version"],
        due_at=row["due_at"],
        original_due_at=row["original_due_at"],
        acknowledge_by=row["acknowledge_by"],
        sla_status=row["sla_status"],
        sla_rule_id=row["sla_rule_id"],
        sla_inputs=dict(row["sla_inputs"]),
        clock_started_at=row["clock_started_at"],
        extended=row["extended"],
        closed_at=row["closed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_MUTABLE = (
    "status",
    "assignee",
    "duplicate_of",
    "due_at",
    "original_due_at",
    "acknowledge_by",
    "sla_status",
    "sla_rule_id",
    "sla_inputs",
    "clock_started_at",
    "extended",
    "closed_at",
    "updated_at",
)


def _values(request: PrivacyRequest, names: Sequence[str]) -> dict[str, Any]:
    values = {name: getattr(request, name) for name in names}
    for name in ("status", "type", "jurisdiction"):
        if name in values:
            values[name] = str(values[name])
    return values


class SqlPrivacyRequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _rows(self, statement: Select[Any]) -> list[RowMapping]:
        return list((await (await self._session.connection()).execute(statement)).mappings())

    async def add(self, request: PrivacyRequest) -> None:
        names = list(PrivacyRequestRow.model_fields)
        try:
            async with self._session.begin_nested():
                await (await self._session.connection()).execute(R.insert().values(**_values(request, names)))
        except IntegrityError as exc:
            # The only unique column a caller chooses is the idempotency key.
            raise Conflict("A request with this idempotency key is being submitted right now.") from exc

    async def get(self, request_id: str) -> PrivacyRequest | None:
        rows = await self._rows(_select().where(R.c.id == request_id))
        return _request(rows[0]) if rows else None

    async def many(self, request_ids: Collection[str]) -> dict[str, PrivacyRequest]:
        if not request_ids:
            return {}
        rows = await self._rows(_select().where(R.c.id.in_(list(request_ids))))
        return {r["id"]: _request(r) for r in rows}

    async def find_by_idempotency_key(self, key: str) -> PrivacyRequest | None:
        rows = await self._rows(_select().where(R.c.idempotency_key == key))
        return _request(rows[0]) if rows else None

    async def find_open_duplicate(
        self, request_type: str, subject_id: int | None, email_hash: str | None
    ) -> PrivacyRequest | None:
        """The oldest open request of this type for the same subject or the same email."""
        same: list[Any] = []
        if subject_id is not None:
            same.append(R.c.subject_id == subject_id)
        if email_hash is not None:
            same.append(R.c.identity_id.in_(select(IDENT.c.id).where(IDENT.c.email_hash == email_hash)))
        if not same:
            return None
        statement = (
            _select()
            .where(R.c.type == request_type, R.c.status.in_(OPEN_STATUSES), or_(*same))
            .where(R.c.status != RequestStatus.AWAITING_VERIFICATION.value)
            .order_by(R.c.received_at, R.c.id)
            .limit(1)
        )
        rows = await self._rows(statement)
        return _request(rows[0]) if rows else None

    async def save(self, request: PrivacyRequest, expected_version: int) -> PrivacyRequest:
        """Write the changed fields if nobody else did since `expected_version`; the version goes up."""
        result = await (await self._session.connection()).execute(
            update(R)
            .where(R.c.id == request.id, R.c.version == expected_version)
            .values(**_values(request, _MUTABLE), version=expected_version + 1)
        )
        if result.rowcount != 1:
            actual = await (await self._session.connection()).scalar(
                select(R.c.version).where(R.c.id == request.id)
            )
            raise StaleVersion("privacy request", request.id, expected_version, actual or 0)
        return request.evolve(version=expected_version + 1)

    async def set_sla_status(self, request_id: str, sla_status: str, now: datetime) -> None:
        # The sweep's bookkeeping: not an edit of the request, so it leaves the version alone.
        await (await self._session.connection()).execute(
            update(R).where(R.c.id == request_id).values(sla_status=sla_status, updated_at=now)
        )

    async def page(self, where: QueueFilter, after: QueueCursor | None, first: int) -> QueuePage:
        statement = _select()
        conditions: list[Any] = []
        if where.statuses:
            conditions.append(R.c.status.in_([s.value for s in where.statuses]))
        if where.types:
            conditions.append(R.c.type.in_([t.value for t in where.types]))
        if where.jurisdictions:
            conditions.append(R.c.jurisdiction.in_([j.value for j in where.jurisdictions]))
        if where.sla_statuses:
            conditions.append(R.c.sla_status.in_(list(where.sla_statuses)))
        if where.assignee is not None:
            conditions.append(R.c.assignee == where.assignee)
        if where.unassigned:
            conditions.append(R.c.assignee.is_(None))
        if where.due_before is not None:
            conditions.append(R.c.due_at < where.due_before)
        if where.subject_id is not None:
            conditions.append(R.c.subject_id == where.subject_id)
        if after is not None:
            conditions.append(
                or_(
                    R.c.due_at > after.due_at,
                    and_(R.c.due_at == after.due_at, R.c.received_at > after.received_at),
                    and_(
                        R.c.due_at == after.due_at,
                        R.c.received_at == after.received_at,
                        R.c.id > after.id,
                    ),
                )
            )
        statement = statement.where(*conditions).order_by(R.c.due_at, R.c.received_at, R.c.id)
        rows = await self._rows(statement.limit(first + 1))
        items = tuple(_request(r) for r in rows[:first])
        return QueuePage(items=items, has_next_page=len(rows) > first)

    async def by_subjects(self, subject_ids: Collection[int]) -> dict[int, list[PrivacyRequest]]:
        found: dict[int, list[PrivacyRequest]] = defaultdict(list)
        if subject_ids:
            rows = await self._rows(
                _select()
                .where(R.c.subject_id.in_(list(subject_ids)))
                .order_by(R.c.received_at.desc(), R.c.id)
            )
            for row in rows:
                found[row["subject_id"]].append(_request(row))
        return found

    async def add_event(self, event: RequestEvent) -> None:
        """Insert the event at the end of the request's hash chain (one head read, one INSERT)."""
        connection = await self._session.connection()
        values = {
            "request_id": event.request_id,
            "action": event.action.value,
            "from_status": event.from_status.value,
            "to_status": event.to_status.value,
            "actor_kind": event.actor_kind.value,
            "actor_id": event.actor_id,
            "occurred_at": event.occurred_at,
            "reason": event.reason,
            "data": dict(event.data),
        }
        (sealed,) = await REQUEST_SEALER.seal_all(connection.execute, [values])
        await connection.execute(E.insert().values(**sealed))

    async def events_for(self, request_ids: Collection[str]) -> dict[str, list[RequestEvent]]:
        found: dict[str, list[RequestEvent]] = defaultdict(list)
        if not request_ids:
            return found
        rows = await self._rows(
            select(E).where(E.c.request_id.in_(list(request_ids))).order_by(E.c.request_id, E.c.id)
        )
        for row in rows:
            found[row["request_id"]].append(
                RequestEvent(
                    request_id=row["request_id"],
                    action=Action(row["action"]),
                    from_status=RequestStatus(row["from_status"]),
                    to_status=RequestStatus(row["to_status"]),
                    actor_kind=ActorRole(row["actor_kind"]),
                    actor_id=row["actor_id"],
                    occurred_at=row["occurred_at"],
                    reason=row["reason"],
                    data=row["data"],
                )
            )
        return found

    async def pauses(self, request_id: str) -> tuple[Pause, ...]:
        rows = await self._rows(select(P).where(P.c.request_id == request_id).order_by(P.c.started_at))
        return tuple(Pause(r["started_at"], r["ended_at"]) for r in rows)

    async def open_pauses(self, request_ids: Collection[str]) -> set[str]:
        if not request_ids:
            return set()
        rows = await (await self._session.connection()).execute(
            select(P.c.request_id).where(P.c.request_id.in_(list(request_ids)), P.c.ended_at.is_(None))
        )
        return set(rows.scalars())

    async def add_pause(self, request_id: str, start: datetime) -> None:
        await (await self._session.connection()).execute(
            P.insert().values(request_id=request_id, started_at=start)
        )

    async def end_pause(self, request_id: str, end: datetime) -> None:
        await (await self._session.connection()).execute(
            update(P).where(P.c.request_id == request_id, P.c.ended_at.is_(None)).values(ended_at=end)
        )

    async def sweep_candidates(
        self, due_before: datetime, now: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> Sequence[PrivacyRequest]:
        """Open requests due before the horizon whose stored status may be stale or whose alert is not
        raised yet, by due date then id, after the keyset `after`. A request at risk and already alerted
        needs nothing until it falls due, so it does not take a place in the batch."""

        def unalerted(kind: str) -> Any:
            return ~exists().where(ALERT.c.request_id == R.c.id, ALERT.c.kind == kind)

        needs_a_look = or_(
            R.c.sla_status == "ON_TRACK",
            and_(R.c.sla_status == "AT_RISK", or_(R.c.due_at < now, unalerted("AT_RISK"))),
            and_(R.c.sla_status == "OVERDUE", unalerted("OVERDUE")),
        )
        query = (
            _select()
            .where(needs_a_look)
            .where(R.c.due_at < due_before)
            .where(R.c.closed_at.is_(None))
            .order_by(R.c.due_at, R.c.id)
            .limit(limit)
        )
        if after is not None:
            due, request_id = after
            query = query.where(or_(R.c.due_at > due, and_(R.c.due_at == due, R.c.id > request_id)))
        rows = await self._rows(query)
        return [_request(r) for r in rows]

    async def add_alert(self, request_id: str, kind: str, due_at: datetime, now: datetime) -> bool:
        """Record an alert once per request and kind; False when it was already raised."""
        insert = (
            pg_insert if (await self._session.connection()).dialect.name == "postgresql" else sqlite_insert
        )
        result = await (await self._session.connection()).execute(
            insert(ALERT)
            .values(request_id=request_id, kind=kind, due_at=due_at, raised_at=now)
            .on_conflict_do_nothing(index_elements=["request_id", "kind"])
        )
        return bool(result.rowcount)

    async def count_open(self) -> int:
        value = await (await self._session.connection()).scalar(
            select(func.count()).where(R.c.status.in_(OPEN_STATUSES))
        )
        return int(value or 0)
