"""The compliance report's aggregates: GROUP BY and COUNT in the database, one statement each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.tables.consent import ConsentEventRow, ConsentStateRow
from dsr_gateway.db.tables.requests import PrivacyRequestEventRow, PrivacyRequestRow, RequestPauseRow
from dsr_gateway.domain.reports import (
    ConsentActivity,
    ConsentReviewCount,
    ConsentStateCount,
    ReportPeriod,
    RequestCount,
    percentile,
)
from dsr_gateway.domain.requests import RequestStatus
from dsr_gateway.services.accountability_ports import ClosedFigures, ReviewRule

EVENTS = ConsentEventRow.__table__  # type: ignore[attr-defined]
STATES = ConsentStateRow.__table__  # type: ignore[attr-defined]
REQUESTS = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
REQUEST_EVENTS = PrivacyRequestEventRow.__table__  # type: ignore[attr-defined]
PAUSES = RequestPauseRow.__table__  # type: ignore[attr-defined]
TERMINAL = [s.value for s in RequestStatus if s.is_terminal]
OPEN = [s.value for s in RequestStatus if s.is_open]
ACTIVITY_FIELDS = {
    "GRANT": "grants",
    "RECONFIRM": "reconfirmations",
    "WITHDRAW": "withdrawals",
    "OBJECT": "objections",
    "GPC_OPT_OUT": "opt_outs",
    "EXPIRE": "expiries",
}


class SqlReportQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def _all(self, statement: Any) -> list[Any]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(statement)).all())

    def _month(self, column: Any) -> Any:
        """YYYY-MM of a UTC timestamp (SQLite stores UTC text, PostgreSQL timestamptz)."""
        if self._postgres:
            return func.to_char(func.timezone("UTC", column), "YYYY-MM")
        return func.strftime("%Y-%m", column)

    def _days(self, start: Any, end: Any) -> Any:
        if self._postgres:
            return func.extract("epoch", end - start) / 86400.0
        return cast(func.julianday(end) - func.julianday(start), Float)

    async def consents_by_state(self) -> Sequence[ConsentStateCount]:
        rows = await self._all(
            select(STATES.c.purpose_key, STATES.c.status, func.count())
            .group_by(STATES.c.purpose_key, STATES.c.status)
            .order_by(STATES.c.purpose_key, STATES.c.status)
        )
        return [ConsentStateCount(p, s, n) for p, s, n in rows]

    async def consent_activity(self, period: ReportPeriod) -> Sequence[ConsentActivity]:
        month = self._month(EVENTS.c.occurred_at).label("month")
        rows = await self._all(
            select(month, EVENTS.c.purpose_key, EVENTS.c.action, func.count())
            .where(EVENTS.c.occurred_at >= period.start, EVENTS.c.occurred_at < period.end)
            .group_by(month, EVENTS.c.purpose_key, EVENTS.c.action)
        )
        counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for month_value, purpose, action, count in rows:
            field = ACTIVITY_FIELDS.get(action)
            if field is not None:
                counts[(month_value, purpose)][field] = count
        return [
            ConsentActivity(
                month=m, purpose=p, **{f: counts[(m, p)].get(f, 0) for f in ACTIVITY_FIELDS.values()}
            )
            for m, p in sorted(counts)
        ]

    async def consents_due_for_review(self, rules: Sequence[ReviewRule]) -> Sequence[ConsentReviewCount]:
        reconfirm = [
            and_(STATES.c.purpose_key == r.purpose, STATES.c.given_at <= r.cutoff)
            for r in rules
            if r.cutoff is not None
        ]
        reconsent = [
            and_(
                STATES.c.purpose_key == r.purpose,
                or_(STATES.c.notice_version.is_(None), STATES.c.notice_version < r.material_version),
            )
            for r in rules
            if r.material_version is not None
        ]
        if not rules:
            return []

        def counted(conditions: list[Any]) -> Any:
            if not conditions:
                return literal(0)
            return func.coalesce(func.sum(case((or_(*conditions), 1), else_=0)), 0)

        rows = await self._all(
            select(STATES.c.purpose_key, counted(reconfirm), counted(reconsent))
            .where(STATES.c.status == "GRANTED", STATES.c.purpose_key.in_([r.purpose for r in rules]))
            .group_by(STATES.c.purpose_key)
        )
        found = {p: (int(a), int(b)) for p, a, b in rows}
        return [ConsentReviewCount(r.purpose, *found.get(r.purpose, (0, 0))) for r in rules]

    async def requests_by_outcome(self, period: ReportPeriod) -> Sequence[RequestCount]:
        outcome = case((REQUESTS.c.status.in_(TERMINAL), REQUESTS.c.status), else_=literal("OPEN")).label(
            "outcome"
        )
        rows = await self._all(
            select(REQUESTS.c.type, REQUESTS.c.jurisdiction, outcome, func.count())
            .where(REQUESTS.c.received_at >= period.start, REQUESTS.c.received_at < period.end)
            .group_by(REQUESTS.c.type, REQUESTS.c.jurisdiction, outcome)
            .order_by(REQUESTS.c.type, REQUESTS.c.jurisdiction, outcome)
        )
        return [RequestCount(t, j, o, n) for t, j, o, n in rows]

    def _closed_in(self, period: ReportPeriod) -> Any:
        return and_(
            REQUESTS.c.closed_at >= period.start,
            REQUESTS.c.closed_at < period.end,
            REQUESTS.c.sla_status.in_(["MET", "MISSED"]),
        )

    async def closed_figures(self, period: ReportPeriod) -> ClosedFigures:
        days = self._days(REQUESTS.c.received_at, REQUESTS.c.closed_at)
        met = func.coalesce(func.sum(case((REQUESTS.c.sla_status == "MET", 1), else_=0)), 0)
        missed = func.coalesce(func.sum(case((REQUESTS.c.sla_status == "MISSED", 1), else_=0)), 0)
        if self._postgres:
            median = func.percentile_cont(0.5).within_group(days)
            p90 = func.percentile_cont(0.9).within_group(days)
            rows = await self._all(select(met, missed, median, p90).where(self._closed_in(period)))
            m, x, med, high = rows[0]
            return ClosedFigures(
                int(m),
                int(x),
                None if med is None else round(float(med), 2),
                None if high is None else round(float(high), 2),
            )
        # SQLite has no percentile: the counts in SQL, the durations as one column.
        (m, x) = (await self._all(select(met, missed).where(self._closed_in(period))))[0]
        durations = [float(d) for (d,) in await self._all(select(days).where(self._closed_in(period)))]
        return ClosedFigures(int(m), int(x), percentile(durations, 0.5), percentile(durations, 0.9))

    async def extensions_granted(self, period: ReportPeriod) -> int:
        rows = await self._all(
            select(func.count()).where(
                REQUEST_EVENTS.c.action == "EXTEND",
                REQUEST_EVENTS.c.occurred_at >= period.start,
                REQUEST_EVENTS.c.occurred_at < period.end,
            )
        )
        return int(rows[0][0])

    async def overdue(self, now: datetime) -> int:
        paused = exists().where(PAUSES.c.request_id == REQUESTS.c.id, PAUSES.c.ended_at.is_(None))
        rows = await self._all(
            select(func.count()).where(REQUESTS.c.status.in_(OPEN), REQUESTS.c.due_at < now, ~paused)
        )
        return int(rows[0][0])
