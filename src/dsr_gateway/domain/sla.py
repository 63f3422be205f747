"""When is a privacy request due, may its clock stop or be extended, and how is it doing?

Pure functions over the rules table in `sla_rules` and an injected `WorkingCalendar`. Every deadline keeps
the rule id and the inputs that produced it, so it can be explained later and is only ever recomputed on
purpose (a pause ending, an extension granted), never because a rule changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dsr_gateway.domain.calendar_math import (
    WorkingCalendar,
    end_of_local_day,
    local_date,
    require_aware,
    roll_to_working_day,
)
from dsr_gateway.domain.errors import ClockRuleRefused, Conflict, ValidationFailed
from dsr_gateway.domain.sla_rules import (
    DEFAULT_CALENDAR_SETTINGS,
    RULES,
    Jurisdiction,
    PausePolicy,
    Period,
    PeriodUnit,
    RegimeCalendarSettings,
    SlaRule,
    with_pauses_enabled,
)

__all__ = [
    "DEFAULT_CALENDAR_SETTINGS",
    "RULES",
    "Deadline",
    "Jurisdiction",
    "Pause",
    "PausePolicy",
    "Period",
    "PeriodUnit",
    "RegimeCalendarSettings",
    "SlaRule",
    "SlaStatus",
    "WorkingCalendar",
    "begin_pause",
    "check_extension",
    "compute_deadline",
    "days_remaining",
    "end_pause",
    "is_paused",
    "sla_status",
    "with_pauses_enabled",
]

JsonScalar = str | int | bool | None
_DAY = timedelta(days=1)


class SlaStatus(StrEnum):
    ON_TRACK = "ON_TRACK"
    AT_RISK = "AT_RISK"
    PAUSED = "PAUSED"
    OVERDUE = "OVERDUE"
    MET = "MET"
    MISSED = "MISSED"


@dataclass(frozen=True, slots=True)
class Pause:
    """A stored interval during which the clock stood still; `end` is None while it runs."""

    start: datetime
    end: datetime | None = None

    @property
    def credit_days(self) -> int:
        """Whole days the deadline moves once the pause has ended (any part of a day counts as one)."""
        if self.end is None:
            return 0
        return math.ceil((self.end - self.start) / _DAY)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A computed deadline; instants are UTC, dates are local to `tz`, `inputs` explain how it was made."""

    rule_id: str
    received_at: datetime
    received_on: date
    tz: str
    due_on: date
    due_at: datetime
    original_due_at: datetime
    acknowledge_by: datetime | None
    inputs: dict[str, JsonScalar] = field(hash=False)

    @property
    def extended(self) -> bool:
        return self.inputs.get("extended") is True


def compute_deadline(
    rule: SlaRule,
    received_at_utc: datetime,
    calendar: WorkingCalendar,
    pauses: Sequence[Pause] = (),
    extended: bool = False,
) -> Deadline:
    """The deadline of a request received at `received_at_utc` under `rule`, local to `calendar`."""
    received_at = require_aware(received_at_utc, "received_at").astimezone(UTC)
    received_on = local_date(received_at, calendar.tz)
    if pauses and not rule.allows_pauses:
        raise _pause_refused(rule)
    _validate_pauses(pauses, received_at)
    if extended and rule.extended_period is None:
        raise _no_extension(rule)
    credit = sum(p.credit_days for p in pauses)

    original_on, original_rolled = _due_day(rule, rule.period, received_on, credit, calendar)
    due_on, rolled = original_on, original_rolled
    if extended and rule.extended_period is not None:
        due_on, rolled = _due_day(rule, rule.extended_period, received_on, credit, calendar)
    acknowledge_by = None
    if rule.acknowledge_within is not None:
        ack_on = rule.acknowledge_within.add_to(received_on, calendar)
        acknowledge_by = end_of_local_day(ack_on, calendar.tz)

    inputs: dict[str, JsonScalar] = {
        "received_at": received_at.isoformat(),
        "received_on": received_on.isoformat(),
        "tz": calendar.tz.key,
        "holiday_region": calendar.region or None,
        "period": str(rule.extended_period if extended else rule.period),
        "pause_days_credited": credit,
        "pause_open": is_paused(pauses),
        "extended": extended,
        "rolled_to_working_day": rolled,
    }
    return Deadline(
        rule_id=rule.rule_id,
        received_at=received_at,
        received_on=received_on,
        tz=calendar.tz.key,
        due_on=due_on,
        due_at=end_of_local_day(due_on, calendar.tz),
        original_due_at=end_of_local_day(original_on, calendar.tz),
        acknowledge_by=acknowledge_by,
        inputs=inputs,
    )


def _due_day(
    rule: SlaRule, period: Period, received_on: date, credit_days: int, calendar: WorkingCalendar
) -> tuple[date, bool]:
    # Pause credit extends the period itself; the working-day roll then applies to its end, once.
    unrolled = period.add_to(received_on, calendar) + timedelta(days=credit_days)
    if not rule.roll_to_working_day:
        return unrolled, False
    rolled = roll_to_working_day(unrolled, calendar)
    return rolled, rolled != unrolled


def _validate_pauses(pauses: Sequence[Pause], received_at: datetime) -> None:
    previous_end: datetime | None = received_at
    for index, pause in enumerate(sorted(pauses, key=lambda p: p.start)):
        start = require_aware(pause.start, f"pauses.{index}.start")
        if previous_end is None:
            raise ValidationFailed.single(f"pauses.{index}", "only the last pause may still be running")
        if start < previous_end:
            raise ValidationFailed.single(
                f"pauses.{index}.start", "a pause must start after receipt and after the previous pause"
            )
        if pause.end is not None and require_aware(pause.end, f"pauses.{index}.end") < start:
            raise ValidationFailed.single(f"pauses.{index}.end", "a pause cannot end before it starts")
        previous_end = pause.end


def is_paused(pauses: Sequence[Pause]) -> bool:
    return any(p.end is None for p in pauses)


def begin_pause(rule: SlaRule, pauses: Sequence[Pause], at: datetime) -> tuple[Pause, ...]:
    """Stop the clock at `at`; refused where the regime's clock never stops."""
    if not rule.allows_pauses:
        raise _pause_refused(rule)
    if is_paused(pauses):
        raise Conflict("The clock is already paused; resume it before pausing again.")
    return (*pauses, Pause(start=require_aware(at, "at")))


def end_pause(pauses: Sequence[Pause], at: datetime) -> tuple[Pause, ...]:
    """Restart the clock at `at`; recompute the deadline with the returned pauses to credit the time."""
    open_pauses = [p for p in pauses if p.end is None]
    if not open_pauses:
        raise Conflict("The clock is not paused, so it cannot be resumed.")
    running = open_pauses[0]
    if require_aware(at, "at") < running.start:
        raise ValidationFailed.single("at", "a pause cannot end before it starts")
    return tuple(Pause(p.start, at) if p is running else p for p in pauses)


def check_extension(
    rule: SlaRule,
    deadline: Deadline,
    now: datetime,
    reason: str,
    already_extended: bool,
    *,
    calendar: WorkingCalendar,
    pauses: Sequence[Pause] = (),
) -> Deadline:
    """The extended deadline, or a domain error saying why the extension is refused."""
    if rule.rule_id != deadline.rule_id or calendar.tz.key != deadline.tz:
        raise Conflict(
            f"This deadline was computed under {deadline.rule_id} in {deadline.tz}; it cannot be extended "
            f"under {rule.rule_id} in {calendar.tz.key}."
        )
    if rule.extended_period is None:
        raise _no_extension(rule)
    if already_extended or deadline.extended:
        raise ClockRuleRefused(
            rule.rule_id,
            "ALREADY_EXTENDED",
            "This request was already extended; only one extension is allowed.",
        )
    if require_aware(now, "now") > deadline.original_due_at:
        raise ClockRuleRefused(
            rule.rule_id,
            "PAST_ORIGINAL_DEADLINE",
            "An extension must be notified before the original deadline, which has passed.",
        )
    if not reason.strip():
        raise ValidationFailed.single("reason", "give the reason for the extension; the subject is told it")
    return compute_deadline(rule, deadline.received_at, calendar, pauses, extended=True)


def sla_status(
    deadline: Deadline,
    now: datetime,
    closed_at: datetime | None = None,
    paused: bool = False,
    at_risk_share: float = 0.2,
    at_risk_min: timedelta = timedelta(days=5),
) -> SlaStatus:
    """How the request stands: the at-risk window is max(`at_risk_min`, share of the period)."""
    if not 0 <= at_risk_share <= 1:
        raise ValueError("at_risk_share must be between 0 and 1")
    if closed_at is not None:
        return SlaStatus.MET if closed_at <= deadline.due_at else SlaStatus.MISSED
    if paused:
        return SlaStatus.PAUSED
    if now > deadline.due_at:
        return SlaStatus.OVERDUE
    period_days = (deadline.due_on - deadline.received_on).days
    window = max(at_risk_min, timedelta(days=period_days * at_risk_share))
    return SlaStatus.AT_RISK if deadline.due_at - now <= window else SlaStatus.ON_TRACK


def days_remaining(deadline: Deadline, now: datetime, tz: ZoneInfo) -> int:
    """Whole local days until the due day: 0 on the due day itself, negative once overdue."""
    return (deadline.due_at.astimezone(tz).date() - local_date(now, tz)).days


def _pause_refused(rule: SlaRule) -> ClockRuleRefused:
    why = (
        "pausing is not enabled for this regime (it is off by default)"
        if rule.pause_policy is PausePolicy.OPT_IN
        else "the law does not let this clock stop"
    )
    return ClockRuleRefused(
        rule.rule_id, "PAUSE_NOT_ALLOWED", f"The {rule.jurisdiction} clock cannot be paused: {why}."
    )


def _no_extension(rule: SlaRule) -> ClockRuleRefused:
    return ClockRuleRefused(
        rule.rule_id,
        "NO_EXTENSION_IN_REGIME",
        f"{rule.jurisdiction} allows no extension of the response deadline.",
    )
