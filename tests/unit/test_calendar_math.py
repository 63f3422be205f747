"""Date arithmetic of the legal clocks; every expected value is worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dsr_gateway.domain.calendar_math import (
    add_business_days,
    add_calendar_days,
    add_months,
    end_of_local_day,
    local_date,
    require_aware,
    roll_to_working_day,
)
from dsr_gateway.domain.errors import ValidationFailed

from .sla_helpers import end_of_day_utc, fake_calendar, utc


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param(date(2025, 3, 3), 1, date(2025, 4, 3), id="3-mar-to-3-apr"),
        pytest.param(date(2025, 5, 15), 1, date(2025, 6, 15), id="15-may-to-15-jun"),
        pytest.param(date(2025, 1, 31), 1, date(2025, 2, 28), id="31-jan-to-28-feb"),
        pytest.param(date(2024, 1, 31), 1, date(2024, 2, 29), id="31-jan-to-29-feb-leap"),
        pytest.param(date(2025, 3, 31), 1, date(2025, 4, 30), id="31-mar-to-30-apr"),
        pytest.param(date(2024, 11, 30), 3, date(2025, 2, 28), id="30-nov-plus-3-to-28-feb"),
        pytest.param(date(2023, 11, 30), 3, date(2024, 2, 29), id="30-nov-plus-3-to-29-feb-leap"),
        pytest.param(date(2025, 12, 15), 1, date(2026, 1, 15), id="year-wrap"),
        pytest.param(date(2024, 2, 29), 12, date(2025, 2, 28), id="leap-day-plus-a-year"),
        pytest.param(date(2025, 8, 31), 0, date(2025, 8, 31), id="zero"),
    ],
)
def test_add_months_clamps_to_the_last_day_of_the_month(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        pytest.param(date(2025, 1, 1), 45, date(2025, 2, 15), id="45-days-across-january"),
        pytest.param(date(2025, 2, 1), 15, date(2025, 2, 16), id="15-days"),
        pytest.param(date(2024, 2, 20), 30, date(2024, 3, 21), id="30-days-across-leap-february"),
        pytest.param(date(2025, 12, 20), 45, date(2026, 2, 3), id="45-days-across-new-year"),
    ],
)
def test_add_calendar_days_counts_from_the_day_after(start: date, days: int, expected: date) -> None:
    assert add_calendar_days(start, days) == expected


@pytest.mark.parametrize(
    ("start", "days", "holidays", "expected"),
    [
        pytest.param(date(2025, 3, 7), 1, (), date(2025, 3, 10), id="friday-plus-1-is-monday"),
        pytest.param(date(2025, 3, 3), 10, (), date(2025, 3, 17), id="two-working-weeks"),
        pytest.param(date(2025, 3, 7), 1, (date(2025, 3, 10),), date(2025, 3, 11), id="skips-holiday"),
        pytest.param(date(2025, 3, 8), 1, (), date(2025, 3, 10), id="start-on-saturday"),
        pytest.param(date(2025, 3, 3), 0, (), date(2025, 3, 3), id="zero"),
    ],
)
def test_add_business_days_skips_weekends_and_holidays(
    start: date, days: int, holidays: tuple[date, ...], expected: date
) -> None:
    assert add_business_days(start, days, fake_calendar("UTC", *holidays)) == expected


@pytest.mark.parametrize(
    ("day", "holidays", "expected"),
    [
        pytest.param(date(2025, 6, 13), (), date(2025, 6, 13), id="friday-stays"),
        pytest.param(date(2025, 6, 14), (), date(2025, 6, 16), id="saturday-to-monday"),
        pytest.param(date(2025, 6, 15), (), date(2025, 6, 16), id="sunday-to-monday"),
        pytest.param(date(2025, 6, 14), (date(2025, 6, 16),), date(2025, 6, 17), id="weekend-then-holiday"),
        pytest.param(date(2025, 6, 12), (date(2025, 6, 12),), date(2025, 6, 13), id="holiday-thursday"),
    ],
)
def test_roll_to_working_day(day: date, holidays: tuple[date, ...], expected: date) -> None:
    assert roll_to_working_day(day, fake_calendar("UTC", *holidays)) == expected


@pytest.mark.parametrize(
    ("day", "tz", "expected_utc"),
    [
        pytest.param(date(2025, 1, 15), "Europe/London", end_of_day_utc(2025, 1, 15, 0), id="london-gmt"),
        pytest.param(date(2025, 7, 15), "Europe/London", end_of_day_utc(2025, 7, 15, 1), id="london-bst"),
        pytest.param(date(2025, 3, 30), "Europe/London", end_of_day_utc(2025, 3, 30, 1), id="london-dst-day"),
        pytest.param(
            date(2025, 7, 15), "Europe/Brussels", end_of_day_utc(2025, 7, 15, 2), id="brussels-cest"
        ),
        pytest.param(
            date(2025, 1, 15), "America/Los_Angeles", utc(2025, 1, 16, 7, 59, 59, 999999), id="la-pst"
        ),
        pytest.param(
            date(2025, 7, 15), "America/Los_Angeles", utc(2025, 7, 16, 6, 59, 59, 999999), id="la-pdt"
        ),
    ],
)
def test_end_of_local_day_is_stored_as_utc(day: date, tz: str, expected_utc: datetime) -> None:
    result = end_of_local_day(day, ZoneInfo(tz))
    assert result == expected_utc
    assert result.tzinfo is not None
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("instant", "tz", "expected"),
    [
        pytest.param(utc(2025, 1, 15, 23, 30), "Europe/London", date(2025, 1, 15), id="2330-local-same-day"),
        pytest.param(utc(2025, 1, 16, 7, 30), "America/Los_Angeles", date(2025, 1, 15), id="utc-next-day"),
        pytest.param(utc(2025, 7, 15, 23, 30), "Europe/Brussels", date(2025, 7, 16), id="local-next-day"),
    ],
)
def test_local_date(instant: datetime, tz: str, expected: date) -> None:
    assert local_date(instant, ZoneInfo(tz)) == expected


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        require_aware(datetime(2025, 1, 1, 12), "received_at")
    assert info.value.problems[0].field == "received_at"


def test_negative_periods_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_months(date(2025, 1, 1), -1)
    with pytest.raises(ValueError, match="negative"):
        add_calendar_days(date(2025, 1, 1), -1)
