"""What staff see of the compliance report."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dsr_gateway.domain import reports as domain


@strawberry.type(description="Recorded consents (every purpose, topic and channel choice) in one state, now.")
class ConsentStateCount:
    purpose: str
    state: str = strawberry.field(description="GRANTED, WITHDRAWN, OBJECTED, EXPIRED or GPC_OPT_OUT.")
    count: int


@strawberry.type(description="Consent events of one purpose that occurred in one calendar month (UTC).")
class ConsentActivity:
    month: str = strawberry.field(description="YYYY-MM.")
    purpose: str
    grants: int
    reconfirmations: int
    withdrawals: int
    objections: int
    opt_outs: int
    expiries: int


@strawberry.type(description="Granted opt-in consents of a purpose that need the subject again.")
class ConsentReviewCount:
    purpose: str
    reconfirmation_due: int = strawberry.field(
        description="Granted or reconfirmed at least reconfirmAfterDays before the period's end."
    )
    needs_reconsent: int = strawberry.field(
        description="Granted under a notice older than the purpose's last material change."
    )


@strawberry.type(description="Requests received in the period, by type, jurisdiction and outcome.")
class RequestCount:
    type: str
    jurisdiction: str
    outcome: str = strawberry.field(description="COMPLETED, REJECTED, CANCELLED, or OPEN.")
    count: int


@strawberry.type(description="How requests closed in the period kept their deadlines.")
class RequestTimeliness:
    closed: int
    met: int
    missed: int
    on_time_percent: float | None = strawberry.field(description="MET / (MET + MISSED) x 100.")
    median_days_to_close: float | None = strawberry.field(description="From receipt to closing, days.")
    p90_days_to_close: float | None
    extensions_granted: int = strawberry.field(description="Deadline extensions granted in the period.")
    overdue_now: int = strawberry.field(description="Open, past the deadline, clock running, now.")


@strawberry.type(description="Consents and requests over [from, to), for a regulator or the DPO.")
class ComplianceReport:
    period_from: datetime
    period_to: datetime
    generated_at: datetime
    consents_by_state: list[ConsentStateCount]
    consent_activity: list[ConsentActivity]
    consents_due_for_review: list[ConsentReviewCount]
    requests: list[RequestCount]
    timeliness: RequestTimeliness

    @classmethod
    def from_domain(cls, report: domain.ComplianceReport) -> ComplianceReport:
        t = report.timeliness
        return cls(
            period_from=report.period.start,
            period_to=report.period.end,
            generated_at=report.generated_at,
            consents_by_state=[
                ConsentStateCount(purpose=c.purpose, state=c.state, count=c.count)
                for c in report.consents_by_state
            ],
            consent_activity=[
                ConsentActivity(
                    month=a.month,
                    purpose=a.purpose,
                    grants=a.grants,
                    reconfirmations=a.reconfirmations,
                    withdrawals=a.withdrawals,
                    objections=a.objections,
                    opt_outs=a.opt_outs,
                    expiries=a.expiries,
                )
                for a in report.consent_activity
            ],
            consents_due_for_review=[
                ConsentReviewCount(
                    purpose=r.purpose,
                    reconfirmation_due=r.reconfirmation_due,
                    needs_reconsent=r.needs_reconsent,
                )
                for r in report.consents_due_for_review
            ],
            requests=[
                RequestCount(type=r.type, jurisdiction=r.jurisdiction, outcome=r.outcome, count=r.count)
                for r in report.requests
            ],
            timeliness=RequestTimeliness(
                closed=t.closed,
                met=t.met,
                missed=t.missed,
                on_time_percent=t.on_time_percent,
                median_days_to_close=t.median_days_to_close,
                p90_days_to_close=t.p90_days_to_close,
                extensions_granted=t.extensions_granted,
                overdue_now=t.overdue_now,
            ),
        )
