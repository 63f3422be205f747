"""API keys: only their hashes are stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.tables.access import ApiKeyRow
from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.services.ports import ApiKeyRecord


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    assert row.id is not None
    return ApiKeyRecord(row.id, row.name, row.prefix, tuple(row.scopes), row.created_at, row.revoked_at)


class SqlApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, name: str, prefix: str, key_hash: str, scopes: Sequence[str], now: datetime) -> int:
        row = ApiKeyRow(name=name, prefix=prefix, key_hash=key_hash, scopes=list(scopes), created_at=now)
        self._session.add(row)
        try:
            await self._session.flush()
        except IntegrityError as exc:
            # Two creates of one name at once: the unique index decides (the hash never collides).
            raise ValidationFailed.single("name", f"a key named {name!r} exists; pick another name") from exc
        assert row.id is not None
        return row.id

    async def find_active_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = (
            await self._session.exec(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, col(ApiKeyRow.revoked_at).is_(None))
            )
        ).first()
        return _record(row) if row else None

    async def list_all(self) -> Sequence[ApiKeyRecord]:
        return [_record(r) for r in await self._session.exec(select(ApiKeyRow).order_by(col(ApiKeyRow.id)))]

    async def revoke(self, name: str, now: datetime) -> bool:
        result = await self._session.exec(
            update(ApiKeyRow)
            .where(col(ApiKeyRow.name) == name, col(ApiKeyRow.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    async def name_taken(self, name: str) -> bool:
        return (
            await self._session.exec(select(ApiKeyRow.id).where(ApiKeyRow.name == name))
        ).first() is not None
