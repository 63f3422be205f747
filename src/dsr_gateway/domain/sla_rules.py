"""The legal clocks as data: one `SlaRule` per regime in one table.

A request stores the `rule_id` it was timed under. Changing a rule means adding a new id (".../v2"), never
editing an old one, so a stored deadline can always be explained and is never silently moved.
The facts encoded here are those of the legal-clocks spec (sources are listed per rule).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dsr_gateway.domain.calendar_math import (
    WorkingCalendar,
    add_business_days,
    add_calendar_days,
    add_months,
)


class Jurisdiction(StrEnum):
    GDPR = "GDPR"
    UK_GDPR = "UK_GDPR"
    CCPA = "CCPA"
    VCDPA = "VCDPA"
    LGPD = "LGPD"
    PIPEDA = "PIPEDA"


class PeriodUnit(StrEnum):
    CALENDAR_MONTH = "CALENDAR_MONTH"
    CALENDAR_DAYS = "CALENDAR_DAYS"
    BUSINESS_DAYS = "BUSINESS_DAYS"


class PausePolicy(StrEnum):
    NEVER = "NEVER"
    # Lawful only when an operator opts in (GDPR); the conservative default keeps the clock running.
    OPT_IN = "OPT_IN"
    ALLOWED = "ALLOWED"


@dataclass(frozen=True, slots=True)
class Period:
    unit: PeriodUnit
    count: int

    def __str__(self) -> str:
        return f"{self.count} {self.unit.value}"

    def add_to(self, day: date, calendar: WorkingCalendar) -> date:
        """The unrolled end day of the period counted from the day of receipt `day`."""
        if self.unit is PeriodUnit.CALENDAR_MONTH:
            return add_months(day, self.count)
        if self.unit is PeriodUnit.CALENDAR_DAYS:
            return add_calendar_days(day, self.count)
        return add_business_days(day, self.count, calendar)


@dataclass(frozen=True, slots=True)
class SlaRule:
    rule_id: str
    jurisdiction: Jurisdiction
    period: Period
    # Calendar months roll a weekend/holiday end to the next working day; calendar days do not
    # (the earlier date is the safe one).
    roll_to_working_day: bool
    # The whole deadline after the one extension, counted from receipt; None when the regime has none.
    extended_period: Period | None
    pause_policy: PausePolicy
    acknowledge_within: Period | None
    notes: str
    sources: tuple[str, ...]
    # The clock (re)starts when the subject's identity is verified (the requested ID arrives), not at
    # receipt; the intake restarts it then.
    starts_at_verification: bool = False

    @property
    def allows_extension(self) -> bool:
        return self.extended_period is not None

    @property
    def allows_pauses(self) -> bool:
        return self.pause_policy is PausePolicy.ALLOWED


def with_pauses_enabled(rule: SlaRule) -> SlaRule:
    """The opt-in variant of a rule with configurable pauses, under its own id so stored deadlines say so."""
    if rule.pause_policy is PausePolicy.ALLOWED:
        return rule
    if rule.pause_policy is PausePolicy.NEVER:
        raise ValueError(f"{rule.jurisdiction} never allows the clock to stop; pauses cannot be enabled")
    return dataclasses.replace(rule, rule_id=f"{rule.rule_id}+pauses", pause_policy=PausePolicy.ALLOWED)


_MONTH = PeriodUnit.CALENDAR_MONTH
_DAYS = PeriodUnit.CALENDAR_DAYS

RULES: Mapping[Jurisdiction, SlaRule] = MappingProxyType(
    {
        Jurisdiction.GDPR: SlaRule(
            rule_id="GDPR-12.3/v1",
            jurisdiction=Jurisdiction.GDPR,
            period=Period(_MONTH, 1),
            roll_to_working_day=True,
            extended_period=Period(_MONTH, 3),
            pause_policy=PausePolicy.OPT_IN,
            acknowledge_within=None,
            notes=(
                "One calendar month from the day of receipt; extendable once by two further months "
                "(receipt + 3 months) with reasons, told to the subject before the original deadline. "
                "Pausing is configurable and off by default. A refusal must give reasons and the right to "
                "complain within one month (Art. 12(4))."
            ),
            sources=("GDPR Art. 12(3)-(4)", "Regulation (EEC, Euratom) No 1182/71 Art. 3"),
        ),
        Jurisdiction.UK_GDPR: SlaRule(
            rule_id="UK_GDPR-12A/v1",
            jurisdiction=Jurisdiction.UK_GDPR,
            period=Period(_MONTH, 1),
            roll_to_working_day=True,
            extended_period=Period(_MONTH, 3),
            pause_policy=PausePolicy.ALLOWED,
            acknowledge_within=None,
            notes=(
                "Starts at the latest of receipt, receipt of requested ID, receipt of a fee (the caller "
                "passes that instant). One calendar month, +2 months once as GDPR. The clock stops while "
                "waiting for clarification of the request's scope."
            ),
            sources=("UK GDPR Art. 12A (Data (Use and Access) Act 2025)", "ICO: Time limits for responding"),
            starts_at_verification=True,
        ),
        Jurisdiction.CCPA: SlaRule(
            rule_id="CCPA-1798.130/v1",
            jurisdiction=Jurisdiction.CCPA,
            period=Period(_DAYS, 45),
            roll_to_working_day=False,
            extended_period=Period(_DAYS, 90),
            pause_policy=PausePolicy.NEVER,
            acknowledge_within=Period(PeriodUnit.BUSINESS_DAYS, 10),
            notes=(
                "45 calendar days from receipt regardless of verification; +45 once (90 in all) with "
                "notice and reason within the first 45. Acknowledge within 10 business days. Opt-out of "
                "sale/sharing and consent revocation are honoured within 15 business days."
            ),
            sources=("Cal. Civ. Code 1798.130", "CCPA Regulations 7021, 7025-7026"),
        ),
        Jurisdiction.VCDPA: SlaRule(
            rule_id="VCDPA-59.1-577/v1",
            jurisdiction=Jurisdiction.VCDPA,
            period=Period(_DAYS, 45),
            roll_to_working_day=False,
            extended_period=Period(_DAYS, 90),
            pause_policy=PausePolicy.NEVER,
            acknowledge_within=None,
            notes=(
                "45 calendar days from receipt; +45 once with notice and reason within the first 45. "
                "An appeal is answered within 60 days."
            ),
            sources=("Va. Code 59.1-577",),
        ),
        Jurisdiction.LGPD: SlaRule(
            rule_id="LGPD-19.II/v1",
            jurisdiction=Jurisdiction.LGPD,
            period=Period(_DAYS, 15),
            roll_to_working_day=False,
            extended_period=None,
            pause_policy=PausePolicy.NEVER,
            acknowledge_within=None,
            notes="15 calendar days from the request for the complete access declaration; no extension.",
            sources=("LGPD Art. 18-19",),
        ),
        Jurisdiction.PIPEDA: SlaRule(
            rule_id="PIPEDA-8.3/v1",
            jurisdiction=Jurisdiction.PIPEDA,
            period=Period(_DAYS, 30),
            roll_to_working_day=False,
            extended_period=Period(_DAYS, 60),
            pause_policy=PausePolicy.NEVER,
            acknowledge_within=None,
            notes=(
                "30 calendar days from receipt; +30 once with notice and reasons within the first 30. "
                "Silence past the deadline counts as a refusal."
            ),
            sources=("PIPEDA s. 8(3)-(4)",),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class RegimeCalendarSettings:
    """Where a regime's clock runs: an IANA time zone and a `holidays` code ("" = weekends only)."""

    tz: str
    holidays: str

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"Unknown IANA time zone {self.tz!r}, e.g. Europe/Brussels") from exc


DEFAULT_CALENDAR_SETTINGS: Mapping[Jurisdiction, RegimeCalendarSettings] = MappingProxyType(
    {
        Jurisdiction.GDPR: RegimeCalendarSettings("Europe/Brussels", ""),
        Jurisdiction.UK_GDPR: RegimeCalendarSettings("Europe/London", "GB-ENG"),
        Jurisdiction.CCPA: RegimeCalendarSettings("America/Los_Angeles", "US-CA"),
        Jurisdiction.VCDPA: RegimeCalendarSettings("America/New_York", "US-VA"),
        Jurisdiction.LGPD: RegimeCalendarSettings("America/Sao_Paulo", "BR"),
        Jurisdiction.PIPEDA: RegimeCalendarSettings("America/Toronto", "CA-ON"),
    }
)
