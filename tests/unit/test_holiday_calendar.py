"""The `holidays`-backed working calendar used by the SLA engine."""

from __future__ import annotations

from datetime import date
from typing import Any

import holidays
import pytest

from dsr_gateway.connectors.holiday_calendar import build_working_calendar, parse_holiday_code
from dsr_gateway.domain.calendar_math import WorkingCalendar
from dsr_gateway.domain.sla import RegimeCalendarSettings


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("", ("", None)),
        ("  ", ("", None)),
        ("DE", ("DE", None)),
        ("GB-ENG", ("GB", "ENG")),
        ("us-ca", ("US", "CA")),
        ("CA-ON", ("CA", "ON")),
    ],
)
def test_parse_holiday_code(code: str, expected: tuple[str, str | None]) -> None:
    assert parse_holiday_code(code) == expected


@pytest.mark.parametrize(
    ("code", "message"),
    [("XX", "Unknown holiday country 'XX'"), ("US-ZZ", "Unknown subdivision 'ZZ' of US"), ("1", "Unknown")],
)
def test_unknown_holiday_code_is_a_clear_value_error(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_working_calendar("Europe/London", code)


def test_unknown_time_zone_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="Unknown IANA time zone 'Mars/Olympus'"):
        build_working_calendar("Mars/Olympus", "DE")
    with pytest.raises(ValueError, match="Unknown IANA time zone"):
        RegimeCalendarSettings("Mars/Olympus", "")


@pytest.mark.parametrize(
    ("code", "day", "is_holiday"),
    [
        ("GB-ENG", date(2025, 8, 25), True),  # Late Summer Bank Holiday
        ("GB-ENG", date(2025, 8, 26), False),
        ("GB-SCT", date(2025, 8, 4), True),  # Scotland's summer bank holiday differs from England's
        ("GB-ENG", date(2025, 8, 4), False),
        ("US-CA", date(2025, 11, 28), True),  # Day after Thanksgiving (California)
        ("US-CA", date(2025, 3, 31), True),  # Cesar Chavez Day
        ("DE", date(2025, 10, 3), True),  # Tag der Deutschen Einheit
        ("DE", date(2025, 10, 4), False),  # a Saturday: weekends are the domain's business
        ("", date(2025, 12, 25), False),
    ],
)
def test_is_holiday(code: str, day: date, is_holiday: bool) -> None:
    assert build_working_calendar("UTC", code).is_holiday(day) is is_holiday


def test_calendar_satisfies_the_domain_protocol_and_names_its_region() -> None:
    calendar: WorkingCalendar = build_working_calendar("Europe/London", "gb-eng")
    assert calendar.region == "GB-ENG"
    assert calendar.tz.key == "Europe/London"
    assert build_working_calendar("UTC", "").region == ""
    assert build_working_calendar("UTC", "GB-ENG").holiday_name(date(2025, 12, 26)) == "Boxing Day"


def test_holidays_are_computed_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = holidays.country_holidays

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["years"])
        return real(*args, **kwargs)

    monkeypatch.setattr(holidays, "country_holidays", counting)
    calendar = build_working_calendar("UTC", "GB-ENG")
    for day in (date(2025, 1, 1), date(2025, 12, 25), date(2026, 1, 1), date(2025, 5, 5)):
        assert calendar.is_holiday(day)
    assert calls == [2025, 2026]
