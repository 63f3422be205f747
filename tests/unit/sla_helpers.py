"""Small builders shared by the SLA tests (plain functions, no fixtures)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dsr_gateway.domain.calendar_math import FixedCalendar


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def end_of_day_utc(year: int, month: int, day: int, utc_offset_hours: int) -> datetime:
    """23:59:59.999999 local on that day in a zone at `utc_offset_hours` from UTC, as a UTC instant."""
    return datetime(year, month, day, 23, 59, 59, 999999, tzinfo=UTC) - timedelta(hours=utc_offset_hours)


def fake_calendar(tz: str = "UTC", *holidays: date, region: str = "") -> FixedCalendar:
    return FixedCalendar(tz=ZoneInfo(tz), holidays=frozenset(holidays), region=region)
