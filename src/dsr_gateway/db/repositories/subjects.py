"""Subjects: found by external id, created on first use."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.tables.subjects import SubjectRow
from dsr_gateway.domain.subjects import Subject


def _subject(row: SubjectRow) -> Subject:
    assert row.id is not None
    return Subject(row.id, row.external_id, row.created_at)


class SqlSubjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, external_id: str) -> Subject | None:
        row = (
            await self._session.exec(select(SubjectRow).where(SubjectRow.external_id == external_id))
        ).first()
        return _subject(row) if row else None

    async def get_by_id(self, subject_id: int) -> Subject | None:
        row = await self._session.get(SubjectRow, subject_id)
        return _subject(row) if row else None

    async def get_or_create(self, external_id: str, now: datetime) -> Subject:
        """Idempotent under concurrency: two first uses of the same id make one subject."""
        dialect = self._session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(SubjectRow)
            .values(external_id=external_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["external_id"])
        )
        await self._session.exec(statement)
        subject = await self.get(external_id)
        assert subject is not None
        return subject

    async def many(self, external_ids: Collection[str]) -> dict[str, Subject]:
        if not external_ids:
            return {}
        rows = await self._session.exec(
            select(SubjectRow).where(col(SubjectRow.external_id).in_(list(external_ids)))
        )
        return {r.external_id: _subject(r) for r in rows}
