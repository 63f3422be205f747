"""The outbox: messages written with the change that caused them, claimed by the sender, and their log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import DriverStatement, flush_pending
from dsr_gateway.db.tables.outbox import OutboxDeliveryRow, OutboxRow
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.privacy_requests import OutboxMessage, OutboxStatus
from dsr_gateway.services.ports import DeliveryRecord, NewMessage, StoredMessage

O = OutboxRow.__table__  # type: ignore[attr-defined]  # noqa: E741
D = OutboxDeliveryRow.__table__  # type: ignore[attr-defined]
INSERT_MANY = O.insert().returning(O.c.id, sort_by_parameter_order=True)
INSERT_ONE = DriverStatement(O.insert())


def _message(row: RowMapping) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        kind=MessageKind(row["kind"]),
        request_id=row["request_id"],
        recipient=None,
        recipient_hint=row["recipient_hint"],
        subject_line=row["subject_line"],
        body=row["body"],
        template_data=dict(row["template_data"]),
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        sent_at=row["sent_at"],
        created_at=row["created_at"],
        html=row["html"],
        language=row["language"],
        headers=dict(row["headers"] or {}),
    )


def _values(m: NewMessage, now: datetime) -> dict[str, Any]:
    return {
        "kind": m.kind,
        "request_id": m.request_id,
        "recipient_encrypted": m.recipient_encrypted,
        "recipient_hint": m.recipient_hint,
        "subject_line": m.subject_line,
        "body": m.body,
        "template_data": m.template_data,
        "html": m.html,
        "language": m.language,
        "headers": m.headers,
        "subject_id": m.subject_id,
        "status": m.status.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _stored(row: RowMapping) -> StoredMessage:
    return StoredMessage(_message(row), row["recipient_encrypted"])


class SqlOutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _connection(self) -> AsyncConnection:
        # Deferred messages (`add_later`) are written before anything else touches the outbox.
        await flush_pending(self._session)
        return await self._session.connection()

    async def add(self, message: NewMessage, now: datetime) -> int:
        result = await (await self._connection()).execute(
            O.insert()
            .values(
                kind=message.kind,
                request_id=message.request_id,
                recipient_encrypted=message.recipient_encrypted,
                recipient_hint=message.recipient_hint,
                subject_line=message.subject_line,
                body=message.body,
                template_data=message.template_data,
                html=message.html,
                language=message.language,
                headers=message.headers,
                subject_id=message.subject_id,
                status=message.status.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(O.c.id)
        )
        return int(result.scalar_one())

    async def add_many(self, messages: Sequence[NewMessage], now: datetime) -> list[int]:
        """Insert messages in multi-row statements; their ids in the same order."""
        ids: list[int] = []
        rows = [_values(m, now) for m in messages]
        connection = await self._connection()
        for start in range(0, len(rows), 500):
            result = await connection.execute(INSERT_MANY, rows[start : start + 500])
            ids.extend(int(i) for i in result.scalars())
        return ids

    async def add_later(self, messages: Sequence[NewMessage], now: datetime) -> None:
        """Insert messages with the unit of work's other deferred writes (db/driver.py): in the same
        transaction, by the commit at the latest; no ids. One message (a consent change's) is deferred."""
        if len(messages) == 1:
            await INSERT_ONE.later(self._session, _values(messages[0], now))
        elif messages:
            await self.add_many(messages, now)

    async def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> Sequence[StoredMessage]:
        """Take up to `limit` due messages for this sender: other senders skip them (SKIP LOCKED on
        PostgreSQL; SQLite serialises writers), and the lease makes a crashed sender's claim expire."""
        query = (
            select(O.c.id)
            .where(O.c.status == OutboxStatus.PENDING.value, O.c.next_attempt_at <= now)
            .order_by(O.c.next_attempt_at, O.c.id)
            .limit(limit)
        )
        if (await self._connection()).dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list((await (await self._connection()).execute(query)).scalars())
        if not ids:
            return []
        await (await self._connection()).execute(
            update(O).where(O.c.id.in_(ids)).values(next_attempt_at=lease_until, attempts=O.c.attempts + 1)
        )
        rows = (
            await (await self._connection()).execute(select(O).where(O.c.id.in_(ids)).order_by(O.c.id))
        ).mappings()
        return [_stored(r) for r in rows]

    async def unlogged(self, limit: int) -> Sequence[StoredMessage]:
        rows = (
            await (await self._connection()).execute(
                select(O)
                .where(O.c.status == OutboxStatus.PENDING.value, O.c.logged_at.is_(None))
                .order_by(O.c.id)
                .limit(limit)
            )
        ).mappings()
        return [_stored(r) for r in rows]

    async def mark_logged(self, ids: Collection[int], now: datetime) -> None:
        if ids:
            await (await self._connection()).execute(
                update(O).where(O.c.id.in_(list(ids))).values(logged_at=now)
            )

    async def record_attempt(
        self,
        message_id: int,
        attempt: DeliveryRecord,
        status: OutboxStatus,
        next_attempt_at: datetime,
        sent_at: datetime | None,
    ) -> None:
        await (await self._connection()).execute(
            D.insert().values(
                outbox_id=message_id,
                attempt=attempt.attempt,
                attempted_at=attempt.attempted_at,
                succeeded=attempt.succeeded,
                detail=attempt.detail,
            )
        )
        values: dict[str, Any] = {
            "status": status.value,
            "next_attempt_at": next_attempt_at,
            "sent_at": sent_at,
            "last_error": None if attempt.succeeded else attempt.detail,
        }
        await (await self._connection()).execute(update(O).where(O.c.id == message_id).values(**values))

    async def listing(
        self, request_id: str | None, first: int, before_id: int | None
    ) -> Sequence[OutboxMessage]:
        query = select(O).order_by(O.c.id.desc()).limit(first)
        if request_id is not None:
            query = query.where(O.c.request_id == request_id)
        if before_id is not None:
            query = query.where(O.c.id < before_id)
        return [_message(r) for r in (await (await self._connection()).execute(query)).mappings()]

    async def deliveries(self, outbox_ids: Collection[int]) -> dict[int, list[DeliveryRecord]]:
        found: dict[int, list[DeliveryRecord]] = defaultdict(list)
        if outbox_ids:
            rows = (
                await (await self._connection()).execute(
                    select(D).where(D.c.outbox_id.in_(list(outbox_ids))).order_by(D.c.outbox_id, D.c.id)
                )
            ).mappings()
            for r in rows:
                found[r["outbox_id"]].append(
                    DeliveryRecord(
                        r["outbox_id"], r["attempt"], r["attempted_at"], r["succeeded"], r["detail"]
                    )
                )
        return found
