"""The compliance report for staff: consents and requests over a period, computed by the database."""

from __future__ import annotations

from datetime import datetime

from dsr_gateway.domain.access import require_staff
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.purposes import ConsentMechanism, reconfirmation_cutoff
from dsr_gateway.domain.reports import ComplianceReport, ReportPeriod, RequestTimeliness
from dsr_gateway.services.accountability_ports import ReportQueries, ReviewRule
from dsr_gateway.services.ports import Clock, UnitOfWorkFactory


class ReportService:
    def __init__(self, uow: UnitOfWorkFactory, queries: ReportQueries, clock: Clock) -> None:
        self._uow = uow
        self._queries = queries
        self._clock = clock

    async def compliance(self, principal: Principal, start: datetime, end: datetime) -> ComplianceReport:
        if principal.kind is not PrincipalKind.SYSTEM:
            require_staff(principal)
        period = ReportPeriod.of(start, end)
        now = self._clock()
        async with self._uow() as uow:
            purposes = await uow.purposes.list_all()
        # Only opt-in grants lapse (domain/consent.py `decide`): the period's end is the review date.
        rules = [
            ReviewRule(p.key, reconfirmation_cutoff(p, period.end), p.last_material_version)
            for p in purposes
            if p.mechanism is ConsentMechanism.OPT_IN
            and (p.reconfirm_after_days is not None or p.last_material_version is not None)
        ]
        q = self._queries
        closed = await q.closed_figures(period)
        return ComplianceReport(
            period=period,
            generated_at=now,
            consents_by_state=tuple(await q.consents_by_state()),
            consent_activity=tuple(await q.consent_activity(period)),
            consents_due_for_review=tuple(await q.consents_due_for_review(rules)),
            requests=tuple(await q.requests_by_outcome(period)),
            timeliness=RequestTimeliness(
                closed=closed.met + closed.missed,
                met=closed.met,
                missed=closed.missed,
                median_days_to_close=closed.median_days,
                p90_days_to_close=closed.p90_days,
                extensions_granted=await q.extensions_granted(period),
                overdue_now=await q.overdue(now),
            ),
        )
