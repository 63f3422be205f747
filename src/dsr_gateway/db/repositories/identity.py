"""Requesters' encrypted contact details and their verification challenges."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.tables.identity import SubjectIdentityRow, VerificationChallengeRow
from dsr_gateway.domain.privacy_requests import Challenge
from dsr_gateway.services.ports import IdentityRecord

IDENT = SubjectIdentityRow.__table__  # type: ignore[attr-defined]
CH = VerificationChallengeRow.__table__  # type: ignore[attr-defined]


def _identity(row: RowMapping) -> IdentityRecord:
    return IdentityRecord(
        id=row["id"],
        subject_id=row["subject_id"],
        email_encrypted=row["email_encrypted"],
        email_hash=row["email_hash"],
        phone_encrypted=row["phone_encrypted"],
    )


class SqlIdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find_by_email_hash(self, email_hash: str) -> IdentityRecord | None:
        rows = (
            await (await self._session.connection()).execute(
                select(IDENT).where(IDENT.c.email_hash == email_hash).order_by(IDENT.c.id).limit(1)
            )
        ).mappings()
        row = rows.first()
        return _identity(row) if row else None

    async def add(
        self,
        subject_id: int | None,
        email: tuple[str, str] | None,
        phone: tuple[str, str] | None,
        now: datetime,
    ) -> int:
        """`email` and `phone` are (ciphertext, lookup hash) pairs."""
        result = await (await self._session.connection()).execute(
            IDENT.insert()
            .values(
                subject_id=subject_id,
                email_encrypted=email[0] if email else None,
                email_hash=email[1] if email else None,
                phone_encrypted=phone[0] if phone else None,
                phone_hash=phone[1] if phone else None,
                created_at=now,
            )
            .returning(IDENT.c.id)
        )
        return int(result.scalar_one())

    async def many(self, identity_ids: Collection[int]) -> dict[int, IdentityRecord]:
        if not identity_ids:
            return {}
        rows = (
            await (await self._session.connection()).execute(
                select(IDENT).where(IDENT.c.id.in_(list(identity_ids)))
            )
        ).mappings()
        return {r["id"]: _identity(r) for r in rows}

    async def challenge(self, request_id: str) -> Challenge | None:
        row = (
            (
                await (await self._session.connection()).execute(
                    select(CH).where(CH.c.request_id == request_id)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return Challenge(
            request_id=row["request_id"],
            code_hash=row["code_hash"],
            expires_at=row["expires_at"],
            attempts_left=row["attempts_left"],
            locked=row["locked"],
            sent_count=row["sent_count"],
            resend_available_at=row["resend_available_at"],
            verified_at=row["verified_at"],
            created_at=row["created_at"],
        )

    async def save_challenge(self, challenge: Challenge) -> None:
        values: dict[str, Any] = {
            "code_hash": challenge.code_hash,
            "expires_at": challenge.expires_at,
            "attempts_left": challenge.attempts_left,
            "locked": challenge.locked,
            "sent_count": challenge.sent_count,
            "resend_available_at": challenge.resend_available_at,
            "verified_at": challenge.verified_at,
        }
        result = await (await self._session.connection()).execute(
            update(CH).where(CH.c.request_id == challenge.request_id).values(**values)
        )
        if result.rowcount == 0:
            await (await self._session.connection()).execute(
                CH.insert().values(request_id=challenge.request_id, created_at=challenge.created_at, **values)
            )
