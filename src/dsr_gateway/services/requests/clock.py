"""The SLA clock of a stored request: which rule and calendar apply, and how the request stands now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dsr_gateway.domain.calendar_math import WorkingCalendar, local_date
from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.sla import (
    RULES,
    Deadline,
    Jurisdiction,
    Pause,
    SlaRule,
    SlaStatus,
    compute_deadline,
    days_remaining,
    sla_status,
    with_pauses_enabled,
)
from dsr_gateway.domain.sla_rules import PausePolicy


@dataclass(frozen=True, slots=True)
class ClockView:
    sla_status: SlaStatus
    days_remaining: int | None
    paused: bool


class SlaClock:
    """Rules as configured (GDPR pauses are opt-in) and one working calendar per regime."""

    def __init__(
        self, calendars: Mapping[Jurisdiction, WorkingCalendar], *, gdpr_pauses: bool = False
    ) -> None:
        missing = [j.value for j in Jurisdiction if j not in calendars]
        if missing:
            raise ValueError(f"no working calendar for {', '.join(missing)}")
        self._calendars = dict(calendars)
        self._rules: dict[Jurisdiction, SlaRule] = {}
        self._by_id: dict[str, SlaRule] = {}
        for jurisdiction, rule in RULES.items():
            self._by_id[rule.rule_id] = rule
            if rule.pause_policy is PausePolicy.OPT_IN:
                enabled = with_pauses_enabled(rule)
                self._by_id[enabled.rule_id] = enabled
                rule = enabled if gdpr_pauses else rule
            self._rules[jurisdiction] = rule

    def rule_for(self, jurisdiction: Jurisdiction) -> SlaRule:
        return self._rules[jurisdiction]

    def stored_rule(self, request: PrivacyRequest) -> SlaRule:
        """The rule the request was timed under, whatever the configuration says today."""
        return self._by_id.get(request.sla_rule_id) or self._rules[request.jurisdiction]

    def calendar(self, jurisdiction: Jurisdiction) -> WorkingCalendar:
        return self._calendars[jurisdiction]

    def start(self, jurisdiction: Jurisdiction, clock_started_at: datetime) -> Deadline:
        return compute_deadline(self.rule_for(jurisdiction), clock_started_at, self._calendars[jurisdiction])

    def recompute(self, request: PrivacyRequest, pauses: Sequence[Pause], extended: bool) -> Deadline:
        """On purpose only: a pause ended or an extension was granted, under the stored rule."""
        return compute_deadline(
            self.stored_rule(request),
            request.clock_started_at,
            self._calendars[request.jurisdiction],
            pauses,
            extended=extended,
        )

    def as_deadline(self, request: PrivacyRequest) -> Deadline:
        """The stored deadline as the domain's value (for the extension check and the status)."""
        calendar = self._calendars[request.jurisdiction]
        inputs = request.sla_inputs
        tz = calendar.tz
        return Deadline(
            rule_id=request.sla_rule_id,
            received_at=request.clock_started_at,
            received_on=local_date(request.clock_started_at, tz),
            tz=str(inputs.get("tz") or tz.key),
            due_on=local_date(request.due_at, tz),
            due_at=request.due_at,
            original_due_at=request.original_due_at,
            acknowledge_by=request.acknowledge_by,
            inputs=dict(inputs),
        )

    def view(self, request: PrivacyRequest, now: datetime, paused: bool) -> ClockView:
        deadline = self.as_deadline(request)
        status = sla_status(deadline, now, closed_at=request.closed_at, paused=paused)
        remaining = (
            None
            if request.closed_at is not None
            else days_remaining(deadline, now, self._calendars[request.jurisdiction].tz)
        )
        return ClockView(status, remaining, paused)
