"""Gauges read from the database when /metrics is scraped (open requests, the outbox backlog), and the
sizes of the setConsents batches (group commit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram


class OperationalQueries(Protocol):
    async def open_requests(self) -> list[tuple[str, str, int]]: ...
    async def outbox_backlog(self) -> tuple[int, datetime | None]: ...


class OperationalGauges:
    """Refreshed at scrape time (two indexed COUNT queries), so every scrape sees the database now,
    whichever process wrote it; nothing runs between scrapes."""

    def __init__(
        self,
        registry: CollectorRegistry,
        queries: OperationalQueries,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._queries = queries
        self._clock = clock
        self.open_requests = Gauge(
            "dsr_open_requests",
            "Open privacy requests by status and stored SLA status",
            ["status", "sla_status"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "dsr_outbox_backlog", "Outbox messages waiting to be sent (PENDING)", registry=registry
        )
        self.outbox_oldest = Gauge(
            "dsr_outbox_oldest_pending_seconds",
            "Age of the oldest message waiting to be sent (0 when none)",
            registry=registry,
        )

    async def refresh(self) -> None:
        rows = await self._queries.open_requests()
        backlog, oldest = await self._queries.outbox_backlog()
        self.open_requests.clear()
        for status, sla_status, count in rows:
            self.open_requests.labels(status, sla_status).set(count)
        self.outbox_backlog.set(backlog)
        age = (self._clock() - oldest).total_seconds() if oldest is not None else 0.0
        self.outbox_oldest.set(max(age, 0.0))


MetricsRefresh = Callable[[], Awaitable[None]]


class ConsentWriteMetrics:
    """setConsents calls per transaction (services/group_commit.py): mostly 1 when quiet; under load it
    grows, and the database's work per call falls."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "dsr_consent_write_batch_size",
            "setConsents calls written in one transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        )

    def observe(self, size: int) -> None:
        self.batch_size.observe(size)
