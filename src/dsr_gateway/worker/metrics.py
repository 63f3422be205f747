"""Counters the worker increments: failed steps and retries, per loop and for outbox deliveries."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class WorkerMetrics:
    """`step` is a loop name (outbox, sla-sweep, checkpoint) or `outbox-delivery` for single messages.

    failures: a loop pass raised, or a delivery attempt failed. retries: a loop pass after a failed one,
    or a delivery attempt after the first.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            "dsr_worker_step_failures", "Worker steps that failed, by step", ["step"], registry=registry
        )
        self.retries = Counter(
            "dsr_worker_step_retries",
            "Worker steps run again after a failure, by step",
            ["step"],
            registry=registry,
        )

    def failed(self, step: str, count: int = 1) -> None:
        if count:
            self.failures.labels(step).inc(count)

    def retried(self, step: str, count: int = 1) -> None:
        if count:
            self.retries.labels(step).inc(count)
