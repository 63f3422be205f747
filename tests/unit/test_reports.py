"""The report's arithmetic: percentiles as percentile_cont computes them, the on-time share, the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.reports import ReportPeriod, on_time_percent, percentile


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.9, 7.0),
        ([1.0, 3.0], 0.5, 2.0),
        ([3.0, 1.0, 2.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9, 9.1),
        ([0.0, 10.0], 0.9, 9.0),
        ([2.004, 2.006], 0.0, 2.0),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], fraction: float, expected: float | None
) -> None:
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize(
    ("met", "missed", "expected"), [(0, 0, None), (3, 1, 75.0), (1, 2, 33.33), (5, 0, 100.0)]
)
def test_on_time_percent(met: int, missed: int, expected: float | None) -> None:
    assert on_time_percent(met, missed) == expected


START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (START, START, "to"),
        (START, START - timedelta(days=1), "to"),
        (START.replace(tzinfo=None), START + timedelta(days=1), "from"),
        (START, START + timedelta(days=4000), "to"),
    ],
)
def test_a_period_must_be_forward_aware_and_bounded(start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ReportPeriod.of(start, end)
    assert caught.value.problems[0].field == field


def test_a_period_is_kept_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    period = ReportPeriod.of(datetime(2026, 1, 1, 2, tzinfo=plus_two), datetime(2026, 2, 1, tzinfo=UTC))
    assert period.start == START
    assert period.start.tzinfo == UTC
