"""The background loops: the outbox sender, the SLA sweep and the fulfilment steps, each a periodic task
that survives errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dsr_gateway.services.fulfilment.runner import FulfilmentRunner
from dsr_gateway.services.outbox import OutboxService
from dsr_gateway.services.ports import Mailer
from dsr_gateway.services.requests import SlaSweepService

logger = logging.getLogger("dsr_gateway.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    outbox_poll_seconds: float = 5.0
    sla_sweep_seconds: float = 300.0
    fulfilment_poll_seconds: float = 2.0


async def run_periodically(
    name: str, step: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event
) -> None:
    """Run `step` every `interval` seconds until `stop` is set; a failing step is logged and retried."""
    while not stop.is_set():
        try:
            await step()
        except Exception:
            logger.exception("worker loop %s failed; retrying in %.0f s", name, interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def run_worker(
    outbox: OutboxService,
    sweep: SlaSweepService,
    mailer: Mailer,
    config: WorkerConfig,
    stop: asyncio.Event,
    fulfilment: FulfilmentRunner | None = None,
) -> None:
    if not mailer.configured:
        logger.warning("no SMTP host configured (DSR_SMTP_HOST): messages stay in the outbox and the log")
    async with asyncio.TaskGroup() as group:
        group.create_task(
            run_periodically("outbox", lambda: outbox.deliver_due(mailer), config.outbox_poll_seconds, stop)
        )
        group.create_task(run_periodically("sla-sweep", sweep.sweep, config.sla_sweep_seconds, stop))
        if fulfilment is not None:
            group.create_task(
                run_periodically("fulfilment", fulfilment.run_due, config.fulfilment_poll_seconds, stop)
            )
