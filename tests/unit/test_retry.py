"""The one backoff rule, with the policies of the outbox, the webhook sender and fulfilment steps."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from dsr_gateway.domain.fulfilment import RetryPolicy
from dsr_gateway.domain.privacy_requests import RETRY_BASE, RETRY_CAP
from dsr_gateway.domain.retry import backoff


@pytest.mark.parametrize(
    ("attempts", "draw", "seconds"),
    [
        (1, 1.0, 15),
        (1, 0.000001, 30),
        (2, 1.0, 30),
        (3, 1.0, 60),
        (4, 0.5, 180),
        (20, 1.0, 3 * 3600),  # capped at 6 h, then halved by the jitter floor
        (500, 0.0, 6 * 3600),
    ],
)
def test_backoff_doubles_up_to_the_cap_with_jitter(attempts: int, draw: float, seconds: float) -> None:
    delay = backoff(attempts, timedelta(seconds=30), timedelta(hours=6), 0.5, draw)
    assert delay.total_seconds() == pytest.approx(seconds, abs=0.01)


def test_backoff_needs_a_failure_count() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        backoff(0, timedelta(seconds=1), timedelta(seconds=2))


def test_the_outbox_waits_30_seconds_doubling_to_an_hour_without_jitter() -> None:
    waits = [backoff(n, RETRY_BASE, RETRY_CAP).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_step_waits_between_half_and_all_of_the_exponential_value() -> None:
    policy = RetryPolicy(base_seconds=10.0, cap_seconds=100.0, jitter=0.5)
    rng = random.Random(7)
    for attempts, full in ((1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0), (5, 100.0), (9, 100.0)):
        seconds = policy.delay(attempts, rng).total_seconds()
        assert full / 2 <= seconds <= full
