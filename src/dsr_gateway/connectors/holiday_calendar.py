"""Working calendars backed by the `holidays` package.

Turns a settings pair (IANA time zone, holiday code such as "DE", "GB-ENG", "US-CA", or "" for weekends
only) into a `WorkingCalendar` for the SLA engine. Holidays are computed once per year and cached.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from holidays.registry import EntityLoader


def parse_holiday_code(code: str) -> tuple[str, str | None]:
    """("GB", "ENG") for "GB-ENG"; ("", None) for "" (weekends only). ValueError for an unknown code."""
    code = code.strip()
    if not code:
        return "", None
    country, _, subdivision = code.partition("-")
    country = country.upper()
    # The registry's codes, not list_supported_countries(): that loads every country (~0.1 s at start).
    if country not in EntityLoader.get_country_codes(include_aliases=True):
        raise ValueError(
            f"Unknown holiday country {country!r} in {code!r}: use an ISO 3166-1 alpha-2 code supported by "
            "the `holidays` package with an optional subdivision (e.g. DE, GB-ENG, US-CA), or an empty "
            "value for weekends only."
        )
    if not subdivision:
        return country, None
    subdivisions: list[str] = list(getattr(holidays, country).subdivisions)
    by_upper = {s.upper(): s for s in subdivisions}
    if subdivision.upper() not in by_upper:
        known = ", ".join(sorted(subdivisions)) or "none"
        raise ValueError(
            f"Unknown subdivision {subdivision!r} of {country} in {code!r}; known subdivisions: {known}."
        )
    return country, by_upper[subdivision.upper()]


def load_zone(tz_name: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown IANA time zone {tz_name!r} (e.g. Europe/Brussels).") from exc


class HolidayCalendar:
    """A `WorkingCalendar`: weekends plus the public holidays of one country (and subdivision)."""

    __slots__ = ("_country", "_region", "_subdivision", "_tz", "_years")

    def __init__(self, tz_name: str, code: str) -> None:
        self._tz = load_zone(tz_name)
        self._country, self._subdivision = parse_holiday_code(code)
        self._region = f"{self._country}-{self._subdivision}" if self._subdivision else self._country
        self._years: dict[int, dict[date, str]] = {}

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def region(self) -> str:
        return self._region

    def is_holiday(self, day: date) -> bool:
        return self.holiday_name(day) is not None

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name, for explaining why a deadline rolled; None on ordinary days."""
        if not self._country:
            return None
        return self._holidays_of(day.year).get(day)

    def _holidays_of(self, year: int) -> dict[date, str]:
        cached = self._years.get(year)
        if cached is None:
            found = holidays.country_holidays(self._country, subdiv=self._subdivision, years=year)
            cached = {d: str(name) for d, name in found.items()}
            self._years[year] = cached
        return cached

    def __repr__(self) -> str:
        return f"HolidayCalendar(tz={self._tz.key!r}, region={self._region!r})"


def build_working_calendar(tz_name: str, holiday_code: str) -> HolidayCalendar:
    """The calendar for one regime's settings; ValueError names the bad time zone or holiday code."""
    return HolidayCalendar(tz_name, holiday_code)
