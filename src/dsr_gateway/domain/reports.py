"""The compliance report: its figures, and the pure arithmetic behind them (percentiles, on-time share).

The counting happens in SQL (db/repositories/reports.py); this module holds the shapes, the period rule
and the statistics that are computed from one column of durations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dsr_gateway.domain.calendar_math import require_aware
from dsr_gateway.domain.errors import ValidationFailed

MAX_REPORT_DAYS = 3700  # ten years and a bit: one report, one regulator question
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """[start, end): events and requests received at or after `start` and before `end`."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime, end: datetime) -> ReportPeriod:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValidationFailed.single("from", "Give both dates with a time zone (e.g. ...T00:00:00Z).")
        start, end = require_aware(start, "from").astimezone(UTC), require_aware(end, "to").astimezone(UTC)
        if end <= start:
            raise ValidationFailed.single("to", "Must be after `from`.")
        if (end - start).days > MAX_REPORT_DAYS:
            raise ValidationFailed.single("to", f"A report covers at most {MAX_REPORT_DAYS} days.")
        return cls(start, end)


@dataclass(frozen=True, slots=True)
class ConsentStateCount:
    purpose: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class ConsentActivity:
    """Consent events of one purpose that occurred in one calendar month (UTC), by kind."""

    month: str  # YYYY-MM
    purpose: str
    grants: int
    reconfirmations: int
    withdrawals: int
    objections: int
    opt_outs: int
    expiries: int


@dataclass(frozen=True, slots=True)
class ConsentReviewCount:
    """Granted consents of a purpose that need the subject again by the end of the period."""

    purpose: str
    reconfirmation_due: int  # granted at least reconfirmAfterDays before the period's end
    needs_reconsent: int  # granted under a notice older than the purpose's last material change


@dataclass(frozen=True, slots=True)
class RequestCount:
    type: str
    jurisdiction: str
    outcome: str  # COMPLETED, REJECTED, CANCELLED, or OPEN (not closed yet)
    count: int


@dataclass(frozen=True, slots=True)
class RequestTimeliness:
    closed: int  # closed in the period with a settled clock (MET or MISSED)
    met: int
    missed: int
    median_days_to_close: float | None
    p90_days_to_close: float | None
    extensions_granted: int  # EXTEND events in the period
    overdue_now: int  # open, past the deadline, the clock not paused, at `generated_at`

    @property
    def on_time_percent(self) -> float | None:
        return on_time_percent(self.met, self.missed)


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    period: ReportPeriod
    generated_at: datetime
    consents_by_state: tuple[ConsentStateCount, ...]
    consent_activity: tuple[ConsentActivity, ...]
    consents_due_for_review: tuple[ConsentReviewCount, ...]
    requests: tuple[RequestCount, ...]
    timeliness: RequestTimeliness


def on_time_percent(met: int, missed: int) -> float | None:
    """MET as a share of MET + MISSED, in percent with two decimals; None when nothing was closed."""
    total = met + missed
    return None if total == 0 else round(100 * met / total, 2)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks: the same as PostgreSQL's percentile_cont."""
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 2)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_DAY
