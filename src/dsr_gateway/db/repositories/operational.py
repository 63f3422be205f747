"""Cheap operational counts for /metrics, each one indexed statement run at scrape time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.tables.outbox import OutboxRow
from dsr_gateway.db.tables.requests import PrivacyRequestRow
from dsr_gateway.domain.requests import RequestStatus

REQUESTS = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
OPEN = [s.value for s in RequestStatus if s.is_open]


class SqlOperationalQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def open_requests(self) -> list[tuple[str, str, int]]:
        """(status, stored SLA status, count) of open requests (ix_privacy_request_status)."""
        statement = (
            select(REQUESTS.c.status, REQUESTS.c.sla_status, func.count())
            .where(REQUESTS.c.status.in_(OPEN))
            .group_by(REQUESTS.c.status, REQUESTS.c.sla_status)
        )
        async with self._engine.connect() as connection:
            return [(s, sla, int(n)) for s, sla, n in (await connection.execute(statement)).all()]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        """Messages waiting to be sent, and when the oldest of them was written (ix_outbox_claim)."""
        statement = select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "PENDING")
        async with self._engine.connect() as connection:
            count, oldest = (await connection.execute(statement)).one()
        if isinstance(oldest, str):  # SQLite hands an aggregate of a UTC column back as text
            oldest = datetime.fromisoformat(oldest)
        return int(count), oldest
