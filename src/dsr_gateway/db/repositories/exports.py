"""Access package records: added by the worker, read and counted by the download route."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.tables.exports import ExportPackageRow
from dsr_gateway.services.fulfilment_ports import ExportRecord


def _record(row: ExportPackageRow) -> ExportRecord:
    return ExportRecord(
        row.id,
        row.request_id,
        row.path,
        row.size,
        row.sha256,
        row.created_at,
        row.expires_at,
        row.download_count,
        row.deleted_at,
    )


class SqlExportPackageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, record: ExportRecord) -> None:
        self._session.add(
            ExportPackageRow(
                id=record.id,
                request_id=record.request_id,
                path=record.path,
                size=record.size,
                sha256=record.sha256,
                created_at=record.created_at,
                expires_at=record.expires_at,
                download_count=record.download_count,
            )
        )
        await self._session.flush()

    async def get(self, export_id: str) -> ExportRecord | None:
        row = await self._session.get(ExportPackageRow, export_id)
        return _record(row) if row else None

    async def many(self, export_ids: Collection[str]) -> dict[str, ExportRecord]:
        if not export_ids:
            return {}
        rows = await self._session.exec(
            select(ExportPackageRow).where(col(ExportPackageRow.id).in_(list(export_ids)))
        )
        return {row.id: _record(row) for row in rows}

    async def count_download(self, export_id: str) -> int:
        """Add one download atomically (two downloads at once both count); return the new count."""
        await self._session.exec(
            update(ExportPackageRow)
            .where(col(ExportPackageRow.id) == export_id)
            .values(download_count=col(ExportPackageRow.download_count) + 1)
        )
        count = (
            await self._session.exec(
                select(ExportPackageRow.download_count).where(col(ExportPackageRow.id) == export_id)
            )
        ).one()
        return count

    async def expired(self, now: datetime, limit: int) -> list[ExportRecord]:
        """Kept packages whose link has expired, oldest first."""
        rows = await self._session.exec(
            select(ExportPackageRow)
            .where(col(ExportPackageRow.deleted_at).is_(None), col(ExportPackageRow.expires_at) <= now)
            .order_by(col(ExportPackageRow.expires_at))
            .limit(limit)
        )
        return [_record(row) for row in rows]

    async def mark_deleted(self, export_ids: Collection[str], now: datetime) -> int:
        """Mark these packages' files deleted; how many were not marked already."""
        result = await self._session.exec(
            update(ExportPackageRow)
            # A second clean-up running at the same time keeps the first one's time.
            .where(col(ExportPackageRow.id).in_(list(export_ids)), col(ExportPackageRow.deleted_at).is_(None))
            .values(deleted_at=now)
        )
        return int(result.rowcount)

    async def kept_paths(self, paths: Collection[str]) -> set[str]:
        """Which of these storage keys a kept (not deleted) package names."""
        if not paths:
            return set()
        rows = await self._session.exec(
            select(ExportPackageRow.path).where(
                col(ExportPackageRow.path).in_(list(paths)), col(ExportPackageRow.deleted_at).is_(None)
            )
        )
        return set(rows)
