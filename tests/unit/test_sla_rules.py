"""Deadlines per regime, for every edge of the legal-clocks spec. Expected dates are worked out by hand."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from dsr_gateway.connectors.holiday_calendar import build_working_calendar
from dsr_gateway.domain.calendar_math import WorkingCalendar
from dsr_gateway.domain.sla import (
    DEFAULT_CALENDAR_SETTINGS,
    RULES,
    Jurisdiction,
    PausePolicy,
    Period,
    PeriodUnit,
    compute_deadline,
)

from .sla_helpers import end_of_day_utc, fake_calendar, utc

M, D, B = PeriodUnit.CALENDAR_MONTH, PeriodUnit.CALENDAR_DAYS, PeriodUnit.BUSINESS_DAYS


def real_calendar(jurisdiction: Jurisdiction) -> WorkingCalendar:
    settings = DEFAULT_CALENDAR_SETTINGS[jurisdiction]
    return build_working_calendar(settings.tz, settings.holidays)


# --- the rules table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "period", "roll", "extended", "pauses", "ack", "at_verification"),
    [
        (Jurisdiction.GDPR, Period(M, 1), True, Period(M, 3), PausePolicy.OPT_IN, None, False),
        (Jurisdiction.UK_GDPR, Period(M, 1), True, Period(M, 3), PausePolicy.ALLOWED, None, True),
        # CCPA: from the day of receipt "regardless of verification".
        (Jurisdiction.CCPA, Period(D, 45), False, Period(D, 90), PausePolicy.NEVER, Period(B, 10), False),
        (Jurisdiction.VCDPA, Period(D, 45), False, Period(D, 90), PausePolicy.NEVER, None, False),
        (Jurisdiction.LGPD, Period(D, 15), False, None, PausePolicy.NEVER, None, False),
        (Jurisdiction.PIPEDA, Period(D, 30), False, Period(D, 60), PausePolicy.NEVER, None, False),
    ],
)
def test_rules_table(
    jurisdiction: Jurisdiction,
    period: Period,
    roll: bool,
    extended: Period | None,
    pauses: PausePolicy,
    ack: Period | None,
    at_verification: bool,
) -> None:
    rule = RULES[jurisdiction]
    assert rule.jurisdiction is jurisdiction
    assert (rule.period, rule.roll_to_working_day, rule.extended_period) == (period, roll, extended)
    assert (rule.pause_policy, rule.acknowledge_within) == (pauses, ack)
    assert rule.starts_at_verification is at_verification
    assert rule.rule_id.startswith(jurisdiction.value)
    assert rule.rule_id.endswith("/v1")
    assert rule.notes
    assert rule.sources


def test_every_regime_has_one_rule_with_a_unique_id_and_default_calendar() -> None:
    assert set(RULES) == set(Jurisdiction) == set(DEFAULT_CALENDAR_SETTINGS)
    assert len({r.rule_id for r in RULES.values()}) == len(RULES)
    assert all(j.value == j.name for j in Jurisdiction)


@pytest.mark.parametrize(
    ("jurisdiction", "tz", "holidays"),
    [
        (Jurisdiction.GDPR, "Europe/Brussels", ""),
        (Jurisdiction.UK_GDPR, "Europe/London", "GB-ENG"),
        (Jurisdiction.CCPA, "America/Los_Angeles", "US-CA"),
        (Jurisdiction.VCDPA, "America/New_York", "US-VA"),
        (Jurisdiction.LGPD, "America/Sao_Paulo", "BR"),
        (Jurisdiction.PIPEDA, "America/Toronto", "CA-ON"),
    ],
)
def test_default_calendar_settings(jurisdiction: Jurisdiction, tz: str, holidays: str) -> None:
    settings = DEFAULT_CALENDAR_SETTINGS[jurisdiction]
    assert (settings.tz, settings.holidays) == (tz, holidays)
    calendar = real_calendar(jurisdiction)
    assert calendar.tz.key == tz
    assert calendar.region == holidays


# --- calendar months (GDPR / UK GDPR), weekends-only Brussels calendar ----------------------------------


@pytest.mark.parametrize(
    ("received_local_noon", "extended", "due_on"),
    [
        pytest.param(date(2025, 3, 3), False, date(2025, 4, 3), id="3-mar-to-3-apr"),
        pytest.param(date(2026, 5, 15), False, date(2026, 6, 15), id="15-may-to-15-jun"),
        pytest.param(date(2025, 1, 31), False, date(2025, 2, 28), id="31-jan-to-28-feb"),
        pytest.param(date(2024, 1, 31), False, date(2024, 2, 29), id="31-jan-to-29-feb-leap"),
        pytest.param(date(2025, 3, 31), False, date(2025, 4, 30), id="31-mar-to-30-apr"),
        pytest.param(date(2024, 11, 30), True, date(2025, 2, 28), id="30-nov-plus-3-months-28-feb"),
        pytest.param(date(2023, 11, 30), True, date(2024, 2, 29), id="30-nov-plus-3-months-29-feb"),
        # 31 Jan 2026 + 1 month = Sat 28 Feb -> Mon 2 Mar.
        pytest.param(date(2026, 1, 31), False, date(2026, 3, 2), id="saturday-rolls-to-monday"),
        # 15 May 2025 + 1 month = Sun 15 Jun -> Mon 16 Jun.
        pytest.param(date(2025, 5, 15), False, date(2025, 6, 16), id="sunday-rolls-to-monday"),
    ],
)
@pytest.mark.parametrize("jurisdiction", [Jurisdiction.GDPR, Jurisdiction.UK_GDPR])
def test_calendar_month_deadlines(
    jurisdiction: Jurisdiction, received_local_noon: date, extended: bool, due_on: date
) -> None:
    received = utc(received_local_noon.year, received_local_noon.month, received_local_noon.day, 11)
    deadline = compute_deadline(
        RULES[jurisdiction], received, fake_calendar("Europe/Brussels"), extended=extended
    )
    assert deadline.due_on == due_on
    assert deadline.due_at.astimezone(fake_calendar("Europe/Brussels").tz).date() == due_on


def test_month_deadline_on_a_fake_holiday_rolls_past_it_and_the_weekend() -> None:
    # 3 Mar 2025 + 1 month = Thu 3 Apr; Thu and Fri are holidays, then Sat, Sun -> Mon 7 Apr.
    calendar = fake_calendar("Europe/Brussels", date(2025, 4, 3), date(2025, 4, 4), region="XX")
    deadline = compute_deadline(RULES[Jurisdiction.GDPR], utc(2025, 3, 3, 11), calendar)
    assert deadline.due_on == date(2025, 4, 7)
    assert deadline.original_due_at == deadline.due_at == end_of_day_utc(2025, 4, 7, 2)  # CEST
    assert deadline.inputs["rolled_to_working_day"] is True
    assert deadline.inputs["holiday_region"] == "XX"


@pytest.mark.parametrize(
    ("received", "due_on", "due_at"),
    [
        # 5 Apr + 1 month = Mon 5 May 2025, Early May bank holiday -> Tue 6 May (BST, UTC+1).
        pytest.param(utc(2025, 4, 5, 10), date(2025, 5, 6), end_of_day_utc(2025, 5, 6, 1), id="may-day"),
        # 18 Mar + 1 month = Good Friday 18 Apr 2025; Sat, Sun, Easter Monday -> Tue 22 Apr.
        pytest.param(utc(2025, 3, 18, 10), date(2025, 4, 22), end_of_day_utc(2025, 4, 22, 1), id="easter"),
        # 25 Nov + 1 month = Christmas (Thu), Boxing Day (Fri), Sat, Sun -> Mon 29 Dec (GMT, UTC+0).
        pytest.param(utc(2025, 11, 25, 10), date(2025, 12, 29), end_of_day_utc(2025, 12, 29, 0), id="xmas"),
    ],
)
def test_uk_month_deadline_rolls_past_real_bank_holidays(
    received: datetime, due_on: date, due_at: datetime
) -> None:
    deadline = compute_deadline(RULES[Jurisdiction.UK_GDPR], received, real_calendar(Jurisdiction.UK_GDPR))
    assert deadline.due_on == due_on
    assert deadline.due_at == due_at


# --- calendar days and business days ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "received", "extended", "due_on", "due_at"),
    [
        # CCPA: Wed 15 Oct 2025 + 45 = Sat 29 Nov (not rolled); PST from 2 Nov (UTC-8).
        pytest.param(
            Jurisdiction.CCPA, utc(2025, 10, 15, 19), False, date(2025, 11, 29),
            utc(2025, 11, 30, 7, 59, 59, 999999), id="ccpa-45-saturday-not-rolled",
        ),
        # CCPA extended: 15 Oct 2025 + 90 = 13 Jan 2026.
        pytest.param(
            Jurisdiction.CCPA, utc(2025, 10, 15, 19), True, date(2026, 1, 13),
            utc(2026, 1, 14, 7, 59, 59, 999999), id="ccpa-90",
        ),
        # VCDPA: 5 Mar 2025 + 45 = Sat 19 Apr (not rolled); EDT (UTC-4).
        pytest.param(
            Jurisdiction.VCDPA, utc(2025, 3, 5, 17), False, date(2025, 4, 19),
            end_of_day_utc(2025, 4, 19, -4), id="vcdpa-45-saturday-not-rolled",
        ),
        # VCDPA extended: 5 Mar 2025 + 90 = 3 Jun.
        pytest.param(
            Jurisdiction.VCDPA, utc(2025, 3, 5, 17), True, date(2025, 6, 3),
            end_of_day_utc(2025, 6, 3, -4), id="vcdpa-90",
        ),
        # LGPD: 6 Apr 2025 + 15 = Mon 21 Apr, Tiradentes (a BR holiday), not rolled; UTC-3.
        pytest.param(
            Jurisdiction.LGPD, utc(2025, 4, 6, 15), False, date(2025, 4, 21),
            utc(2025, 4, 22, 2, 59, 59, 999999), id="lgpd-15-holiday-not-rolled",
        ),
        # PIPEDA: 1 Jun 2025 + 30 = 1 Jul, Canada Day, not rolled; EDT (UTC-4).
        pytest.param(
            Jurisdiction.PIPEDA, utc(2025, 6, 1, 16), False, date(2025, 7, 1),
            end_of_day_utc(2025, 7, 1, -4), id="pipeda-30-holiday-not-rolled",
        ),
        # PIPEDA extended: 1 Jun 2025 + 60 = 31 Jul.
        pytest.param(
            Jurisdiction.PIPEDA, utc(2025, 6, 1, 16), True, date(2025, 7, 31),
            utc(2025, 8, 1, 3, 59, 59, 999999), id="pipeda-30-plus-30",
        ),
    ],
)  # fmt: skip
def test_calendar_day_deadlines_are_not_rolled(
    jurisdiction: Jurisdiction, received: datetime, extended: bool, due_on: date, due_at: datetime
) -> None:
    deadline = compute_deadline(RULES[jurisdiction], received, real_calendar(jurisdiction), extended=extended)
    assert deadline.due_on == due_on
    assert deadline.due_at == due_at
    assert deadline.inputs["rolled_to_working_day"] is False


@pytest.mark.parametrize(
    ("received", "ack_on", "due_on"),
    [
        # Wed 15 Oct 2025: 16,17,20,21,22,23,24,27,28,29 -> Wed 29 Oct. Due 15 Oct + 45 = 29 Nov.
        pytest.param(utc(2025, 10, 15, 19), date(2025, 10, 29), date(2025, 11, 29), id="plain-weeks"),
        # Fri 21 Nov 2025: 24,25,26, (27 Thanksgiving, 28 day after), 1,2,3,4,5,8,9 -> Tue 9 Dec.
        # Due: 21 Nov + 45 = 5 Jan 2026.
        pytest.param(utc(2025, 11, 21, 19), date(2025, 12, 9), date(2026, 1, 5), id="thanksgiving"),
        # Fri 20 Dec 2024: 23,24,(25),26,27,30,31,(1 Jan),2,3,6,7 -> Tue 7 Jan 2025. Due 3 Feb 2025.
        pytest.param(utc(2024, 12, 20, 19), date(2025, 1, 7), date(2025, 2, 3), id="christmas-new-year"),
    ],
)
def test_ccpa_acknowledgement_in_california_business_days(
    received: datetime, ack_on: date, due_on: date
) -> None:
    calendar = real_calendar(Jurisdiction.CCPA)
    deadline = compute_deadline(RULES[Jurisdiction.CCPA], received, calendar)
    assert deadline.acknowledge_by is not None
    assert deadline.acknowledge_by.astimezone(calendar.tz).date() == ack_on
    assert deadline.acknowledge_by.astimezone(calendar.tz).time().isoformat() == "23:59:59.999999"
    assert deadline.due_on == due_on


@pytest.mark.parametrize("jurisdiction", [j for j in Jurisdiction if j is not Jurisdiction.CCPA])
def test_only_ccpa_has_an_acknowledgement_clock(jurisdiction: Jurisdiction) -> None:
    deadline = compute_deadline(RULES[jurisdiction], utc(2025, 3, 3, 12), real_calendar(jurisdiction))
    assert deadline.acknowledge_by is None


# --- time zones ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "received", "received_on", "due_on"),
    [
        # 22:30 UTC = 23:30 CET: still 3 Mar in Brussels -> 3 Apr.
        pytest.param(
            Jurisdiction.GDPR, utc(2025, 3, 3, 22, 30), date(2025, 3, 3), date(2025, 4, 3), id="brussels-2330"
        ),
        # 23:30 UTC on 2 Mar is already 00:30 on 3 Mar in Brussels -> 3 Apr.
        pytest.param(
            Jurisdiction.GDPR,
            utc(2025, 3, 2, 23, 30),
            date(2025, 3, 3),
            date(2025, 4, 3),
            id="brussels-next-day",
        ),
        # 07:30 UTC 4 Mar = 23:30 PST 3 Mar -> 3 Mar + 45 = 17 Apr.
        pytest.param(
            Jurisdiction.CCPA, utc(2025, 3, 4, 7, 30), date(2025, 3, 3), date(2025, 4, 17), id="la-2330"
        ),
        # 08:30 UTC 4 Mar = 00:30 PST 4 Mar -> 18 Apr.
        pytest.param(
            Jurisdiction.CCPA, utc(2025, 3, 4, 8, 30), date(2025, 3, 4), date(2025, 4, 18), id="la-0030"
        ),
        # 23:30 BST on 31 Mar 2025 (22:30 UTC) -> 30 Apr.
        pytest.param(
            Jurisdiction.UK_GDPR,
            utc(2025, 3, 31, 22, 30),
            date(2025, 3, 31),
            date(2025, 4, 30),
            id="london-bst-2330",
        ),
    ],
)
def test_day_of_receipt_is_the_local_day(
    jurisdiction: Jurisdiction, received: datetime, received_on: date, due_on: date
) -> None:
    deadline = compute_deadline(RULES[jurisdiction], received, real_calendar(jurisdiction))
    assert deadline.received_on == received_on
    assert deadline.due_on == due_on


def test_deadline_instant_follows_daylight_saving_time() -> None:
    # Same rule, same zone: a GMT due day ends at 23:59:59.999999 UTC, a BST one an hour earlier.
    rule, calendar = RULES[Jurisdiction.UK_GDPR], fake_calendar("Europe/London")
    winter = compute_deadline(rule, utc(2025, 1, 6, 12), calendar)  # -> Thu 6 Feb
    summer = compute_deadline(rule, utc(2025, 6, 3, 12), calendar)  # -> Thu 3 Jul
    assert winter.due_at == utc(2025, 2, 6, 23, 59, 59, 999999)
    assert summer.due_at == utc(2025, 7, 3, 22, 59, 59, 999999)


def test_inputs_explain_the_deadline_and_are_json() -> None:
    received = utc(2025, 10, 15, 19)
    deadline = compute_deadline(RULES[Jurisdiction.CCPA], received, real_calendar(Jurisdiction.CCPA))
    assert json.loads(json.dumps(deadline.inputs)) == {
        "received_at": "2025-10-15T19:00:00+00:00",
        "received_on": "2025-10-15",
        "tz": "America/Los_Angeles",
        "holiday_region": "US-CA",
        "period": "45 CALENDAR_DAYS",
        "pause_days_credited": 0,
        "pause_open": False,
        "extended": False,
        "rolled_to_working_day": False,
    }
    assert deadline.rule_id == "CCPA-1798.130/v1"
    assert deadline.received_at == received
    assert deadline.tz == "America/Los_Angeles"


def test_weekends_only_calendar_has_no_region() -> None:
    deadline = compute_deadline(
        RULES[Jurisdiction.GDPR], utc(2025, 3, 3, 12), real_calendar(Jurisdiction.GDPR)
    )
    assert deadline.inputs["holiday_region"] is None


def test_received_instant_in_another_offset_is_stored_as_utc() -> None:
    # 12:00 at UTC+5 is 07:00 UTC, 08:00 CET on 3 Mar 2025 -> due 3 Apr.
    received = datetime(2025, 3, 3, 12, tzinfo=timezone(timedelta(hours=5)))
    deadline = compute_deadline(RULES[Jurisdiction.GDPR], received, fake_calendar("Europe/Brussels"))
    assert deadline.received_at == utc(2025, 3, 3, 7)
    assert deadline.received_at.utcoffset() == timedelta(0)
    assert deadline.inputs["received_at"] == "2025-03-03T07:00:00+00:00"
    assert deadline.due_on == date(2025, 4, 3)
