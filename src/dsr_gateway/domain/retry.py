"""Retrying with backoff: how long to wait after a failed try (outbox, webhooks, fulfilment steps)."""

from __future__ import annotations

from datetime import timedelta


def backoff(
    failures: int, base: timedelta, cap: timedelta, jitter: float = 0.0, draw: float = 0.0
) -> timedelta:
    """The wait after `failures` failed tries: base, 2 base, 4 base ... up to `cap`, less a random share.

    `jitter` is the largest share taken off (0.5: the wait falls in [50%, 100%] of the exponential value)
    and `draw`, a number in [0, 1] (random in production, fixed in tests), how much of it is taken, so
    that receivers that come back are not hit by every sender at once.
    """
    if failures < 1:
        raise ValueError("failures counts the failed tries so far and starts at 1")
    exponential = min(cap, base * (1 << min(failures - 1, 30)))
    return exponential * (1 - jitter * min(max(draw, 0.0), 1.0))
