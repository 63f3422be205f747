"""Purposes and notices: rows <-> domain objects."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.repositories.process_caches import caches_for, remember_notice
from dsr_gateway.db.tables.catalogue import NoticePurposeRow, PrivacyNoticeRow, PurposeRow
from dsr_gateway.domain.errors import StaleVersion
from dsr_gateway.domain.notices import DataCategory, NoticePurpose, PrivacyNotice, Translation
from dsr_gateway.domain.purposes import (
    Channel,
    ConsentMechanism,
    LegalBasis,
    Purpose,
    PurposeCategory,
    Topic,
)


def purpose_from_row(row: PurposeRow) -> Purpose:
    return Purpose(
        key=row.key,
        title=row.title,
        description=row.description,
        legal_basis=LegalBasis(row.legal_basis),
        mechanism=ConsentMechanism(row.mechanism),
        category=PurposeCategory(row.category),
        channels=tuple(Channel(c) for c in row.channels),
        topics=tuple(Topic(**t) for t in row.topics),
        recipients=tuple(row.recipients),
        reconfirm_after_days=row.reconfirm_after_days,
        gpc_opt_out=row.gpc_opt_out,
        last_material_version=row.last_material_version,
        version=row.version,
    )


def _purpose_values(purpose: Purpose) -> dict[str, Any]:
    return {
        "title": purpose.title,
        "description": purpose.description,
        "legal_basis": purpose.legal_basis.value,
        "mechanism": purpose.mechanism.value,
        "category": purpose.category.value,
        "channels": [c.value for c in purpose.channels],
        "topics": [{"key": t.key, "title": t.title, "description": t.description} for t in purpose.topics],
        "recipients": list(purpose.recipients),
        "reconfirm_after_days": purpose.reconfirm_after_days,
        "gpc_opt_out": purpose.gpc_opt_out,
    }


class SqlPurposeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str) -> Purpose | None:
        row = (await self._session.exec(select(PurposeRow).where(PurposeRow.key == key))).first()
        return purpose_from_row(row) if row else None

    async def list_all(self) -> Sequence[Purpose]:
        rows = await self._session.exec(select(PurposeRow).order_by(col(PurposeRow.key)))
        return [purpose_from_row(r) for r in rows]

    async def existing_keys(self, keys: Collection[str]) -> set[str]:
        if not keys:
            return set()
        rows = await self._session.exec(select(PurposeRow.key).where(col(PurposeRow.key).in_(list(keys))))
        return set(rows)

    async def add(self, purpose: Purpose, now: datetime) -> None:
        values = _purpose_values(purpose)
        self._session.add(PurposeRow(key=purpose.key, version=1, created_at=now, updated_at=now, **values))
        await self._session.flush()

    async def update(self, purpose: Purpose, expected_version: int, now: datetime) -> None:
        # The version guard turns a lost update between two admins into a clear conflict.
        result = await self._session.exec(
            update(PurposeRow)
            .where(col(PurposeRow.key) == purpose.key, col(PurposeRow.version) == expected_version)
            .values(**_purpose_values(purpose), version=expected_version + 1, updated_at=now)
        )
        if result.rowcount != 1:
            current = await self.get(purpose.key)
            raise StaleVersion("purpose", purpose.key, expected_version, current.version if current else 0)

    async def mark_material_change(self, keys: Collection[str], notice_version: int) -> None:
        if keys:
            await self._session.exec(
                update(PurposeRow)
                .where(col(PurposeRow.key).in_(list(keys)))
                .values(last_material_version=notice_version)
            )


class SqlNoticeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._caches = caches_for(session.bind)

    async def latest_version(self) -> int | None:
        rows = await self._session.exec(
            select(PrivacyNoticeRow.version).order_by(col(PrivacyNoticeRow.version).desc()).limit(1)
        )
        return rows.first()

    async def get(self, version: int | None) -> PrivacyNotice | None:
        if version is None:
            version = await self.latest_version()
            if version is None:
                return None
        elif self._caches is not None and version in self._caches.notices:
            return self._caches.notices[version]  # published versions never change (process_caches.py)
        notice = await self._load(version)
        if notice is not None:
            remember_notice(self._caches, notice)
        return notice

    async def _load(self, version: int) -> PrivacyNotice | None:
        row = await self._session.get(PrivacyNoticeRow, version)
        if row is None:
            return None
        purposes = await self._session.exec(
            select(NoticePurposeRow)
            .where(NoticePurposeRow.notice_version == version)
            .order_by(col(NoticePurposeRow.id))
        )
        return PrivacyNotice(
            version=row.version,
            summary=row.summary,
            data_categories=tuple(
                DataCategory(
                    key=c["key"],
                    description=c["description"],
                    purposes=tuple(c["purposes"]),
                    recipients=tuple(c["recipients"]),
                    retention=c["retention"],
                )
                for c in row.data_categories
            ),
            purposes=tuple(
                NoticePurpose(p.purpose_key, p.title, p.description, p.material_change) for p in purposes
            ),
            translations=tuple(Translation(**t) for t in row.translations),
            policy_url=row.policy_url,
            published_at=row.published_at,
            published_by=row.published_by,
        )

    async def add(self, notice: PrivacyNotice) -> None:
        self._session.add(
            PrivacyNoticeRow(
                version=notice.version,
                summary=notice.summary,
                policy_url=notice.policy_url,
                data_categories=[
                    {
                        "key": c.key,
                        "description": c.description,
                        "purposes": list(c.purposes),
                        "recipients": list(c.recipients),
                        "retention": c.retention,
                    }
                    for c in notice.data_categories
                ],
                translations=[{"language": t.language, "summary": t.summary} for t in notice.translations],
                published_at=notice.published_at,
                published_by=notice.published_by,
            )
        )
        await self._session.flush()
        for p in notice.purposes:
            self._session.add(
                NoticePurposeRow(
                    notice_version=notice.version,
                    purpose_key=p.key,
                    title=p.title,
                    description=p.description,
                    material_change=p.material_change,
                )
            )
        await self._session.flush()
