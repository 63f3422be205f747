"""The background loops: the outbox sender, the SLA sweep, the fulfilment steps, signed checkpoints, the
webhook sender, the consent expiry sweep and the consent follow-ups (receipts, messages), each a periodic
task that survives errors."""

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
from dsr_gateway.worker.metrics import WorkerMetrics

logger = logging.getLogger("dsr_gateway.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    outbox_poll_seconds: float = 5.0
    sla_sweep_seconds: float = 300.0
    fulfilment_poll_seconds: float = 2.0
    checkpoint_seconds: float = 0.0  # 0: no scheduled checkpoints
    consent_expiry_sweep_seconds: float = 3600.0
    webhook_poll_seconds: float = 5.0
    consent_followup_poll_seconds: float = 1.0
    export_cleanup_seconds: float = 3600.0


async def run_periodically(
    name: str,
    step: Callable[[], Awaitable[object]],
    interval: float,
    stop: asyncio.Event,
    metrics: WorkerMetrics | None = None,
) -> None:
    """Run `step` every `interval` seconds until `stop` is set; a failing step is logged and retried."""
    failed = False
    while not stop.is_set():
        if failed and metrics is not None:
            metrics.retried(name)
        try:
            await step()
            failed = False
        except Exception:
            failed = True
            if metrics is not None:
                metrics.failed(name)
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
    fulfilment: FulfilmentRunner | None = None,
    metrics: WorkerMetrics | None = None,
    checkpoint: Callable[[], Awaitable[object]] | None = None,
    consent_expiry: Callable[[], Awaitable[object]] | None = None,
    webhooks: Callable[[], Awaitable[object]] | None = None,
    consent_followups: Callable[[], Awaitable[object]] | None = None,
    export_cleanup: Callable[[], Awaitable[object]] | None = None,
) -> None:
    if not mailer.configured:
        logger.warning("no SMTP host configured (DSR_SMTP_HOST): messages stay in the outbox and the log")
    async with asyncio.TaskGroup() as group:
        group.create_task(
            run_periodically(
                "outbox", lambda: deliver(outbox, mailer, metrics), config.outbox_poll_seconds, stop, metrics
            )
        )
        group.create_task(run_periodically("sla-sweep", sweep.sweep, config.sla_sweep_seconds, stop, metrics))
        if fulfilment is not None:
            group.create_task(
                run_periodically(
                    "fulfilment", fulfilment.run_due, config.fulfilment_poll_seconds, stop, metrics
                )
            )
        if checkpoint is not None and config.checkpoint_seconds > 0:
            # Signs the chain heads when they changed since the last checkpoint (docs/audit.md).
            group.create_task(
                run_periodically("checkpoint", checkpoint, config.checkpoint_seconds, stop, metrics)
            )
        if consent_expiry is not None:
            group.create_task(
                run_periodically(
                    "consent-expiry", consent_expiry, config.consent_expiry_sweep_seconds, stop, metrics
                )
            )
        if webhooks is not None:
            group.create_task(
                run_periodically("webhooks", webhooks, config.webhook_poll_seconds, stop, metrics)
            )
        if consent_followups is not None:
            # Receipts and "permission changed" messages of new consent changes, from the ledger.
            group.create_task(
                run_periodically(
                    "consent-followups",
                    consent_followups,
                    config.consent_followup_poll_seconds,
                    stop,
                    metrics,
                )
            )
        if export_cleanup is not None:
            # Access packages whose link expired, and files no package names (services/exports.py).
            group.create_task(
                run_periodically(
                    "export-cleanup", export_cleanup, config.export_cleanup_seconds, stop, metrics
                )
            )


async def deliver(outbox: OutboxService, mailer: Mailer, metrics: WorkerMetrics | None) -> object:
    """One pass of the sender, counting failed and retried deliveries."""
    run = await outbox.deliver_due(mailer)
    if metrics is not None:
        metrics.failed("outbox-delivery", run.failed)
        metrics.retried("outbox-delivery", run.retried)
    return run
