"""Date arithmetic for legal clocks.

Calendar months follow Regulation 1182/71 Art. 3 (same date next month, clamped to the month's last day);
"days" are calendar days counted from the day after receipt; business days skip weekends and holidays.
Holidays come from an injected `WorkingCalendar`, so this module stays standard library only.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from dsr_gateway.domain.errors import ValidationFailed

# Deadlines end at the last representable instant of the local day.
END_OF_DAY = time(23, 59, 59, 999999)
_SATURDAY = 5


class WorkingCalendar(Protocol):
    """Where a regime's clock runs: its time zone and its public holidays (weekends are never working)."""

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def region(self) -> str:
        """The holiday region code (e.g. `GB-ENG`), or "" for weekends only / unknown."""
        ...

    def is_holiday(self, day: date) -> bool: ...


@dataclass(frozen=True, slots=True)
class FixedCalendar:
    """A calendar with a fixed set of holidays; weekends only when `holidays` is empty."""

    tz: ZoneInfo
    holidays: frozenset[date] = field(default_factory=frozenset)
    region: str = ""

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays


# The instants a filter or a clock may name: far enough inside datetime's years 1-9999 that moving to UTC
# and adding or taking a review period or a report's span cannot overflow.
EARLIEST_YEAR, LATEST_YEAR = 1000, 8999


def require_aware(instant: datetime, field_name: str) -> datetime:
    """Naive datetimes have no place in a legal clock: the local day would be a guess."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValidationFailed.single(field_name, "must be a timezone-aware date and time")
    if not EARLIEST_YEAR <= instant.year <= LATEST_YEAR:
        raise ValidationFailed.single(
            field_name, f"must be a date and time between the years {EARLIEST_YEAR} and {LATEST_YEAR}"
        )
    return instant


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The local calendar day an instant falls on (23:30 local is still that day)."""
    return require_aware(instant, "instant").astimezone(tz).date()


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """23:59:59.999999 local time on `day`, as a UTC instant."""
    return datetime.combine(day, END_OF_DAY, tzinfo=tz).astimezone(UTC)


def is_working_day(day: date, calendar: WorkingCalendar) -> bool:
    return day.weekday() < _SATURDAY and not calendar.is_holiday(day)


def roll_to_working_day(day: date, calendar: WorkingCalendar) -> date:
    """`day` itself when it is a working day, else the next working day."""
    while not is_working_day(day, calendar):
        day += timedelta(days=1)
    return day


def add_months(day: date, months: int) -> date:
    """Same date `months` later; the month's last day when that date does not exist (31 Jan -> 28/29 Feb)."""
    if months < 0:
        raise ValueError("months must not be negative")
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last_day = _stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last_day))


def add_calendar_days(day: date, days: int) -> date:
    """The day of receipt does not count: receipt + 45 days is the 45th day after it."""
    if days < 0:
        raise ValueError("days must not be negative")
    return day + timedelta(days=days)


def add_business_days(day: date, days: int, calendar: WorkingCalendar) -> date:
    """The `days`-th working day after `day` (the start day never counts, even if it is a working day)."""
    if days < 0:
        raise ValueError("days must not be negative")
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, calendar):
            remaining -= 1
    return day
