"""The background loops: the outbox sender, the SLA sweep, and (when given) the webhook sender and the
consent expiry sweep, each a periodic task that survives errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dsr_gateway.services.outbox import OutboxService
from dsr_gateway.services.ports import Mailer
from dsr_gateway.services.requests import SlaSweepService

logger = logging.getLogger("dsr_gateway.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    outbox_poll_seconds: float = 5.0
    sla_sweep_seconds: float = 300.0
    consent_expiry_sweep_seconds: float = 3600.0
    webhook_poll_seconds: float = 5.0


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
    *,
    consent_expiry: Callable[[], Awaitable[object]] | None = None,
    webhooks: Callable[[], Awaitable[object]] | None = None,
) -> None:
    if not mailer.configured:
        logger.warning("no SMTP host configured (DSR_SMTP_HOST): messages stay in the outbox and the log")
    async with asyncio.TaskGroup() as group:
        group.create_task(
            run_periodically("outbox", lambda: outbox.deliver_due(mailer), config.outbox_poll_seconds, stop)
        )
        group.create_task(run_periodically("sla-sweep", sweep.sweep, config.sla_sweep_seconds, stop))
        if consent_expiry is not None:
            group.create_task(
                run_periodically("consent-expiry", consent_expiry, config.consent_expiry_sweep_seconds, stop)
            )
        if webhooks is not None:
            group.create_task(run_periodically("webhooks", webhooks, config.webhook_poll_seconds, stop))
