"""SLA status boundaries and days remaining; thresholds worked out by hand in a UTC calendar."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dsr_gateway.domain.sla import (
    RULES,
    Deadline,
    Jurisdiction,
    SlaStatus,
    compute_deadline,
    days_remaining,
    sla_status,
)

from .sla_helpers import fake_calendar, utc

UTC_CAL = fake_calendar("UTC")
US = timedelta(microseconds=1)


def lgpd() -> Deadline:
    # 1 Apr 2025 + 15 days = 16 Apr; 20% of 15 days = 3 days < 5, so the window is 5 days.
    return compute_deadline(RULES[Jurisdiction.LGPD], utc(2025, 4, 1, 12), UTC_CAL)


def pipeda() -> Deadline:
    # 1 Jan 2025 + 30 days = 31 Jan; 20% of 30 days = 6 days > 5.
    return compute_deadline(RULES[Jurisdiction.PIPEDA], utc(2025, 1, 1, 12), UTC_CAL)


def gdpr() -> Deadline:
    # Mon 6 Jan 2025 + 1 month = Thu 6 Feb; 31 days, 20% = 6.2 days = 6 d 4 h 48 min.
    return compute_deadline(RULES[Jurisdiction.GDPR], utc(2025, 1, 6, 12), UTC_CAL)


@pytest.mark.parametrize(
    ("deadline", "now", "expected"),
    [
        pytest.param(lgpd(), utc(2025, 4, 1, 12), SlaStatus.ON_TRACK, id="short-fresh"),
        pytest.param(lgpd(), utc(2025, 4, 11, 23, 59, 59), SlaStatus.ON_TRACK, id="short-5d+1s"),
        pytest.param(lgpd(), utc(2025, 4, 11, 23, 59, 59, 999999), SlaStatus.AT_RISK, id="short-exactly-5d"),
        pytest.param(lgpd(), utc(2025, 4, 16, 23, 59, 59, 999999), SlaStatus.AT_RISK, id="short-at-deadline"),
        pytest.param(
            lgpd(), utc(2025, 4, 16, 23, 59, 59, 999999) + US, SlaStatus.OVERDUE, id="short-overdue"
        ),
        pytest.param(pipeda(), utc(2025, 1, 25, 23, 59, 59), SlaStatus.ON_TRACK, id="30d-6d+1s"),
        pytest.param(pipeda(), utc(2025, 1, 26), SlaStatus.AT_RISK, id="30d-under-6d-but-over-5d"),
        pytest.param(gdpr(), utc(2025, 1, 31, 19, 11, 59), SlaStatus.ON_TRACK, id="month-before-6.2d"),
        pytest.param(gdpr(), utc(2025, 1, 31, 19, 12), SlaStatus.AT_RISK, id="month-inside-6.2d"),
        pytest.param(gdpr(), utc(2025, 2, 7), SlaStatus.OVERDUE, id="month-overdue"),
    ],
)
def test_open_request_status(deadline: Deadline, now: datetime, expected: SlaStatus) -> None:
    assert sla_status(deadline, now) is expected


def test_paused_wins_over_overdue_while_open() -> None:
    assert sla_status(lgpd(), utc(2025, 5, 1), paused=True) is SlaStatus.PAUSED
    assert sla_status(lgpd(), utc(2025, 4, 2), paused=True) is SlaStatus.PAUSED


@pytest.mark.parametrize(
    ("closed_at", "paused", "expected"),
    [
        pytest.param(utc(2025, 4, 2), False, SlaStatus.MET, id="early"),
        pytest.param(utc(2025, 4, 16, 23, 59, 59, 999999), False, SlaStatus.MET, id="last-instant"),
        pytest.param(utc(2025, 4, 17), False, SlaStatus.MISSED, id="one-microsecond-late"),
        pytest.param(utc(2025, 4, 17), True, SlaStatus.MISSED, id="closed-wins-over-paused"),
    ],
)
def test_closed_request_status(closed_at: datetime, paused: bool, expected: SlaStatus) -> None:
    assert sla_status(lgpd(), utc(2025, 6, 1), closed_at=closed_at, paused=paused) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Half of 15 days = 7.5 days before 16 Apr 23:59:59.999999 = 9 Apr 11:59:59.999999.
        pytest.param(utc(2025, 4, 9, 11, 59), SlaStatus.ON_TRACK, id="before"),
        pytest.param(utc(2025, 4, 9, 12), SlaStatus.AT_RISK, id="inside"),
    ],
)
def test_at_risk_window_is_configurable(now: datetime, expected: SlaStatus) -> None:
    assert sla_status(lgpd(), now, at_risk_share=0.5, at_risk_min=timedelta(0)) is expected


def test_at_risk_share_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        sla_status(lgpd(), utc(2025, 4, 2), at_risk_share=1.5)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(utc(2025, 4, 1, 12), 15, id="day-of-receipt"),
        pytest.param(utc(2025, 4, 16, 23), 0, id="due-day"),
        pytest.param(utc(2025, 4, 17), -1, id="day-after"),
        pytest.param(utc(2025, 4, 20, 12), -4, id="four-days-overdue"),
    ],
)
def test_days_remaining(now: datetime, expected: int) -> None:
    assert days_remaining(lgpd(), now, ZoneInfo("UTC")) == expected


def test_days_remaining_counts_local_days() -> None:
    # CCPA: received 15 Oct 2025, due Sat 29 Nov (Los Angeles), i.e. 30 Nov 07:59:59.999999 UTC.
    la = ZoneInfo("America/Los_Angeles")
    deadline = compute_deadline(RULES[Jurisdiction.CCPA], utc(2025, 10, 15, 19), fake_calendar(la.key))
    # 30 Nov 07:00 UTC is 29 Nov 23:00 in Los Angeles: the due day itself.
    assert days_remaining(deadline, utc(2025, 11, 30, 7), la) == 0
    # 30 Nov 08:00 UTC is 30 Nov 00:00 in Los Angeles: one day overdue.
    assert days_remaining(deadline, utc(2025, 11, 30, 8), la) == -1
    assert sla_status(deadline, utc(2025, 11, 30, 8)) is SlaStatus.OVERDUE
