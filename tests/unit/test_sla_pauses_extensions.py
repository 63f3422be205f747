"""Stopping the clock and extending it; expected dates worked out by hand."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from dsr_gateway.connectors.holiday_calendar import build_working_calendar
from dsr_gateway.domain.errors import ClockRuleRefused, Conflict, ValidationFailed
from dsr_gateway.domain.sla import (
    DEFAULT_CALENDAR_SETTINGS,
    RULES,
    Jurisdiction,
    Pause,
    begin_pause,
    check_extension,
    compute_deadline,
    end_pause,
    is_paused,
    with_pauses_enabled,
)

from .sla_helpers import fake_calendar, utc

UK = RULES[Jurisdiction.UK_GDPR]
LONDON = fake_calendar("Europe/London")
RECEIVED = utc(2025, 3, 3, 10)  # Mon 3 Mar 2025 (GMT) -> due Thu 3 Apr


# --- pauses ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pauses", "credit", "due_on"),
    [
        pytest.param((), 0, date(2025, 4, 3), id="none"),
        pytest.param(
            (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 10, 9)),), 0, date(2025, 4, 3), id="zero-length"
        ),
        pytest.param(
            (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 10, 10)),), 1, date(2025, 4, 4), id="1h-is-1-day"
        ),
        pytest.param(
            (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 11, 9)),), 1, date(2025, 4, 4), id="exactly-1-day"
        ),
        # 2 days 1 hour -> 3 days: Sun 6 Apr -> Mon 7 Apr.
        pytest.param(
            (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 12, 10)),), 3, date(2025, 4, 7), id="rounded-up-rolled"
        ),
        # Each pause rounds up on its own: 1 + 1 -> Sat 5 Apr -> Mon 7 Apr.
        pytest.param(
            (
                Pause(utc(2025, 3, 10, 9), utc(2025, 3, 10, 10)),
                Pause(utc(2025, 3, 12, 9), utc(2025, 3, 12, 10)),
            ),
            2,
            date(2025, 4, 7),
            id="two-pauses",
        ),
        # A running pause credits nothing until it ends.
        pytest.param((Pause(utc(2025, 3, 10, 9)),), 0, date(2025, 4, 3), id="open-pause"),
    ],
)
def test_pause_credit_is_whole_days_and_the_roll_is_reapplied(
    pauses: tuple[Pause, ...], credit: int, due_on: date
) -> None:
    deadline = compute_deadline(UK, RECEIVED, LONDON, pauses)
    assert deadline.inputs["pause_days_credited"] == credit
    assert deadline.inputs["pause_open"] is is_paused(pauses)
    assert deadline.due_on == due_on


def test_roll_applies_once_to_the_end_of_the_paused_period() -> None:
    # 15 May 2025 + 1 month = Sun 15 Jun (rolled: Mon 16 Jun). With 1 paused day the period itself ends
    # Mon 16 Jun, a working day: the weekend roll is not added on top of the pause credit.
    received = utc(2025, 5, 15, 11)
    assert compute_deadline(UK, received, LONDON).due_on == date(2025, 6, 16)
    paused = (Pause(utc(2025, 5, 20, 9), utc(2025, 5, 20, 11)),)
    assert compute_deadline(UK, received, LONDON, paused).due_on == date(2025, 6, 16)


def test_pause_credit_rolls_past_real_bank_holidays() -> None:
    # Fri 14 Mar 2025 + 1 month = Mon 14 Apr; +4 paused days = Good Friday 18 Apr -> Tue 22 Apr.
    calendar = build_working_calendar("Europe/London", "GB-ENG")
    pauses = (Pause(utc(2025, 3, 20, 9), utc(2025, 3, 24, 9)),)
    deadline = compute_deadline(UK, utc(2025, 3, 14, 12), calendar, pauses)
    assert deadline.due_on == date(2025, 4, 22)
    assert deadline.inputs["rolled_to_working_day"] is True


def test_begin_then_end_pause_moves_the_deadline() -> None:
    paused = begin_pause(UK, (), utc(2025, 3, 10, 9))
    assert is_paused(paused)
    resumed = end_pause(paused, utc(2025, 3, 11, 8))
    assert resumed == (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 11, 8)),)
    assert not is_paused(resumed)
    assert compute_deadline(UK, RECEIVED, LONDON, resumed).due_on == date(2025, 4, 4)


@pytest.mark.parametrize(
    "jurisdiction",
    [Jurisdiction.GDPR, Jurisdiction.CCPA, Jurisdiction.VCDPA, Jurisdiction.LGPD, Jurisdiction.PIPEDA],
)
def test_pause_is_refused_where_the_clock_never_stops(jurisdiction: Jurisdiction) -> None:
    rule = RULES[jurisdiction]
    with pytest.raises(ClockRuleRefused) as info:
        begin_pause(rule, (), utc(2025, 3, 10, 9))
    assert info.value.code == "PAUSE_NOT_ALLOWED"
    assert info.value.rule_id == rule.rule_id
    with pytest.raises(ClockRuleRefused):
        compute_deadline(rule, RECEIVED, LONDON, (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 11, 9)),))


def test_gdpr_pauses_are_opt_in_under_their_own_rule_id() -> None:
    gdpr = RULES[Jurisdiction.GDPR]
    with pytest.raises(ClockRuleRefused, match="not enabled"):
        begin_pause(gdpr, (), utc(2025, 3, 10, 9))
    enabled = with_pauses_enabled(gdpr)
    assert enabled.rule_id == "GDPR-12.3/v1+pauses"
    assert begin_pause(enabled, (), utc(2025, 3, 10, 9)) == (Pause(utc(2025, 3, 10, 9)),)
    assert with_pauses_enabled(UK) is UK
    with pytest.raises(ValueError, match="never"):
        with_pauses_enabled(RULES[Jurisdiction.CCPA])


def test_pause_state_errors() -> None:
    paused = begin_pause(UK, (), utc(2025, 3, 10, 9))
    with pytest.raises(Conflict, match="already paused"):
        begin_pause(UK, paused, utc(2025, 3, 11, 9))
    with pytest.raises(ValidationFailed):
        end_pause(paused, utc(2025, 3, 10, 8))
    with pytest.raises(Conflict, match="not paused"):
        end_pause((), utc(2025, 3, 10, 8))


@pytest.mark.parametrize(
    "pauses",
    [
        pytest.param((Pause(utc(2025, 3, 1), utc(2025, 3, 4)),), id="before-receipt"),
        pytest.param((Pause(utc(2025, 3, 10), utc(2025, 3, 9)),), id="ends-before-start"),
        pytest.param(
            (Pause(utc(2025, 3, 10), utc(2025, 3, 12)), Pause(utc(2025, 3, 11), utc(2025, 3, 13))),
            id="overlap",
        ),
        pytest.param((Pause(utc(2025, 3, 10)), Pause(utc(2025, 3, 11))), id="two-running"),
    ],
)
def test_inconsistent_pauses_are_refused(pauses: tuple[Pause, ...]) -> None:
    with pytest.raises(ValidationFailed):
        compute_deadline(UK, RECEIVED, LONDON, pauses)


# --- extensions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "received", "original_on", "extended_on"),
    [
        # 30 Nov 2024 + 1 month = Mon 30 Dec; + 3 months = Fri 28 Feb 2025.
        pytest.param(
            Jurisdiction.GDPR, utc(2024, 11, 30, 11), date(2024, 12, 30), date(2025, 2, 28), id="gdpr"
        ),
        # 18 Mar 2025 + 1 month = Good Friday -> Tue 22 Apr; + 3 months = Wed 18 Jun.
        pytest.param(
            Jurisdiction.UK_GDPR, utc(2025, 3, 18, 11), date(2025, 4, 22), date(2025, 6, 18), id="uk"
        ),
        pytest.param(
            Jurisdiction.CCPA, utc(2025, 10, 15, 19), date(2025, 11, 29), date(2026, 1, 13), id="ccpa"
        ),
        pytest.param(
            Jurisdiction.VCDPA, utc(2025, 3, 5, 17), date(2025, 4, 19), date(2025, 6, 3), id="vcdpa"
        ),
        pytest.param(
            Jurisdiction.PIPEDA, utc(2025, 6, 1, 16), date(2025, 7, 1), date(2025, 7, 31), id="pipeda"
        ),
    ],
)
def test_extension_granted(
    jurisdiction: Jurisdiction, received: datetime, original_on: date, extended_on: date
) -> None:
    settings = DEFAULT_CALENDAR_SETTINGS[jurisdiction]
    calendar = build_working_calendar(settings.tz, settings.holidays)
    rule = RULES[jurisdiction]
    deadline = compute_deadline(rule, received, calendar)
    assert deadline.due_on == original_on
    extended = check_extension(
        rule, deadline, deadline.original_due_at, "complex request", already_extended=False, calendar=calendar
    )
    assert extended.due_on == extended_on
    assert extended.original_due_at == deadline.original_due_at
    assert extended.extended
    assert extended.inputs["extended"] is True


def test_extension_refused_when_the_regime_has_none() -> None:
    lgpd = RULES[Jurisdiction.LGPD]
    calendar = fake_calendar("America/Sao_Paulo")
    deadline = compute_deadline(lgpd, utc(2025, 4, 6, 15), calendar)
    with pytest.raises(ClockRuleRefused) as info:
        check_extension(lgpd, deadline, utc(2025, 4, 7), "busy", already_extended=False, calendar=calendar)
    assert info.value.code == "NO_EXTENSION_IN_REGIME"
    with pytest.raises(ClockRuleRefused):
        compute_deadline(lgpd, utc(2025, 4, 6, 15), calendar, extended=True)


@pytest.mark.parametrize(
    ("already_extended", "deadline_extended"),
    [pytest.param(True, False, id="flag"), pytest.param(False, True, id="stored-deadline")],
)
def test_extension_refused_twice(already_extended: bool, deadline_extended: bool) -> None:
    rule, calendar = RULES[Jurisdiction.CCPA], fake_calendar("America/Los_Angeles")
    deadline = compute_deadline(rule, utc(2025, 10, 15, 19), calendar, extended=deadline_extended)
    with pytest.raises(ClockRuleRefused) as info:
        check_extension(rule, deadline, utc(2025, 10, 20), "more time", already_extended, calendar=calendar)
    assert info.value.code == "ALREADY_EXTENDED"


def test_extension_refused_after_the_original_deadline() -> None:
    rule, calendar = RULES[Jurisdiction.CCPA], fake_calendar("America/Los_Angeles")
    deadline = compute_deadline(rule, utc(2025, 10, 15, 19), calendar)
    late = deadline.original_due_at + timedelta(microseconds=1)
    with pytest.raises(ClockRuleRefused) as info:
        check_extension(rule, deadline, late, "more time", already_extended=False, calendar=calendar)
    assert info.value.code == "PAST_ORIGINAL_DEADLINE"


@pytest.mark.parametrize("reason", ["", "   "])
def test_extension_refused_without_a_reason(reason: str) -> None:
    rule, calendar = RULES[Jurisdiction.CCPA], fake_calendar("America/Los_Angeles")
    deadline = compute_deadline(rule, utc(2025, 10, 15, 19), calendar)
    with pytest.raises(ValidationFailed) as info:
        check_extension(rule, deadline, utc(2025, 10, 20), reason, already_extended=False, calendar=calendar)
    assert info.value.problems[0].field == "reason"


def test_extension_refused_under_another_rule_or_zone() -> None:
    gdpr, calendar = RULES[Jurisdiction.GDPR], fake_calendar("Europe/Brussels")
    deadline = compute_deadline(gdpr, utc(2025, 3, 3, 11), calendar)
    with pytest.raises(Conflict, match=re.escape("computed under GDPR-12.3/v1")):
        check_extension(UK, deadline, utc(2025, 3, 4), "why", already_extended=False, calendar=calendar)
    with pytest.raises(Conflict, match="Europe/Brussels"):
        check_extension(gdpr, deadline, utc(2025, 3, 4), "why", already_extended=False, calendar=LONDON)


def test_extension_keeps_the_pause_credit() -> None:
    # 3 Mar 2025 + 3 months = Tue 3 Jun; 1 paused day -> Wed 4 Jun. Original: Fri 4 Apr.
    pauses = (Pause(utc(2025, 3, 10, 9), utc(2025, 3, 10, 12)),)
    deadline = compute_deadline(UK, RECEIVED, LONDON, pauses)
    extended = check_extension(
        UK, deadline, utc(2025, 3, 20), "scope", already_extended=False, calendar=LONDON, pauses=pauses
    )
    assert extended.due_on == date(2025, 6, 4)
    assert extended.original_due_at.astimezone(LONDON.tz).date() == date(2025, 4, 4)
