"""Signed consent receipts, kept so a subject can list and download theirs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import flush_pending
from dsr_gateway.db.tables.audit import ConsentReceiptRow
from dsr_gateway.domain.receipts import StoredReceipt

RECEIPTS = ConsentReceiptRow.__table__  # type: ignore[attr-defined]
ROWS_PER_INSERT = 500


def _receipt(row: ConsentReceiptRow) -> StoredReceipt:
    return StoredReceipt(row.receipt_id, row.subject_id, row.created_at, row.jws)


class SqlConsentReceiptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, receipts: Sequence[StoredReceipt]) -> None:
        """Insert receipts in multi-row statements (the feed's follower issues a batch at a time)."""
        rows = [
            {"receipt_id": r.receipt_id, "subject_id": r.subject_id, "created_at": r.created_at, "jws": r.jws}
            for r in receipts
        ]
        await flush_pending(self._session)
        connection = await self._session.connection()
        for start in range(0, len(rows), ROWS_PER_INSERT):
            await connection.execute(RECEIPTS.insert(), rows[start : start + ROWS_PER_INSERT])

    async def list_for_subject(self, subject_id: int, limit: int) -> Sequence[StoredReceipt]:
        await flush_pending(self._session)
        rows = await self._session.exec(
            select(ConsentReceiptRow)
            .where(ConsentReceiptRow.subject_id == subject_id)
            .order_by(col(ConsentReceiptRow.created_at).desc(), col(ConsentReceiptRow.id).desc())
            .limit(limit)
        )
        return [_receipt(r) for r in rows]

    async def list_for_subjects(
        self, subject_ids: Sequence[int], limit: int
    ) -> dict[int, list[StoredReceipt]]:
        """Each subject's newest `limit` receipts in one statement (a window per subject)."""
        found: dict[int, list[StoredReceipt]] = {}
        if not subject_ids:
            return found
        await flush_pending(self._session)
        order = (col(ConsentReceiptRow.created_at).desc(), col(ConsentReceiptRow.id).desc())
        rank = (
            func.row_number()
            .over(partition_by=col(ConsentReceiptRow.subject_id), order_by=order)
            .label("rank")
        )
        ranked = (
            select(ConsentReceiptRow, rank)
            .where(col(ConsentReceiptRow.subject_id).in_(list(subject_ids)))
            .subquery()
        )
        row = aliased(ConsentReceiptRow, ranked)
        rows = await self._session.exec(
            select(row).where(ranked.c.rank <= limit).order_by(ranked.c.subject_id, ranked.c.rank)
        )
        for r in rows:
            found.setdefault(r.subject_id, []).append(_receipt(r))
        return found

    async def get(self, receipt_id: str) -> StoredReceipt | None:
        await flush_pending(self._session)
        row = (
            await self._session.exec(
                select(ConsentReceiptRow).where(ConsentReceiptRow.receipt_id == receipt_id)
            )
        ).first()
        return _receipt(row) if row else None
