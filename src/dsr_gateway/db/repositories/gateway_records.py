"""The gateway's own records about one subject, read and erased for the gateway's records connector.

Reads return only the subject's rows and never another person's data: consent events carry the actor's
kind but not the agent's or client's id; requests carry their own fields, not who worked on them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsr_gateway.db.tables.consent import ConsentEventRow, ConsentStateRow
from dsr_gateway.db.tables.identity import SubjectIdentityRow
from dsr_gateway.db.tables.requests import PrivacyRequestRow
from dsr_gateway.db.tables.subjects import SubjectRow
from dsr_gateway.domain.requests import RequestStatus

EV = ConsentEventRow.__table__  # type: ignore[attr-defined]
ST = ConsentStateRow.__table__  # type: ignore[attr-defined]
ID = SubjectIdentityRow.__table__  # type: ignore[attr-defined]
RQ = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
SU = SubjectRow.__table__  # type: ignore[attr-defined]
OPEN = [s.value for s in RequestStatus if s.is_open]
BATCH = 1000

TABLES: dict[str, tuple[Any, list[str]]] = {
    "consents": (
        ST,
        ["purpose_key", "topic", "channel", "status", "method", "notice_version", "given_at", "updated_at"],
    ),
    "consent_events": (
        EV,
        [
            "id",
            "purpose_key",
            "topic",
            "channel",
            "action",
            "method",
            "notice_version",
            "origin_app_id",
            "origin_url",
            "origin_user_agent",
            "origin_ip",
            "actor_kind",
            "occurred_at",
        ],
    ),
    "privacy_requests": (
        RQ,
        ["id", "type", "status", "jurisdiction", "details", "received_at", "due_at", "closed_at"],
    ),
}


class SqlGatewayRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _subject_id(self, connection: AsyncConnection, external_id: str) -> int | None:
        found = (await connection.execute(select(SU.c.id).where(SU.c.external_id == external_id))).first()
        return int(found[0]) if found else None

    async def read(self, external_id: str) -> AsyncIterator[tuple[str, list[str], list[tuple[Any, ...]]]]:
        """(table, columns, rows) in batches; ordered so that pages are stable."""
        async with self._engine.connect() as connection:
            subject_id = await self._subject_id(connection, external_id)
            if subject_id is None:
                return
            for name, (table, columns) in TABLES.items():
                query: Select[Any] = select(*(table.c[c] for c in columns)).where(
                    table.c.subject_id == subject_id
                )
                offset = 0
                while True:
                    ordered = query.order_by(*(table.c[c] for c in columns[:3])).limit(BATCH).offset(offset)
                    rows = [tuple(r) for r in (await connection.execute(ordered)).all()]
                    if rows:
                        yield name, columns, rows
                    if len(rows) < BATCH:
                        break
                    offset += BATCH

    async def erase(
        self, external_id: str, keep_request_id: str | None, erase_details: bool
    ) -> dict[str, int]:
        """Remove what may be removed; returns rows changed per item. See GatewayRecordsConnector.erase."""
        async with self._engine.begin() as connection:
            subject_id = await self._subject_id(connection, external_id)
            if subject_id is None:
                return {}
            phones = await connection.execute(
                update(ID)
                .where(ID.c.subject_id == subject_id, ID.c.phone_encrypted.is_not(None))
                .values(phone_encrypted=None, phone_hash=None)
            )
            # An email still needed to answer an open request (this one included) stays until it closes.
            still_needed = select(RQ.c.identity_id).where(
                RQ.c.identity_id.is_not(None), RQ.c.status.in_(OPEN)
            )
            emails = await connection.execute(
                update(ID)
                .where(
                    ID.c.subject_id == subject_id,
                    ID.c.email_encrypted.is_not(None),
                    ID.c.id.not_in(still_needed),
                )
                .values(email_encrypted=None, email_hash=None)
            )
            details = 0
            if erase_details:
                closed = and_(
                    RQ.c.subject_id == subject_id,
                    RQ.c.status.not_in(OPEN),
                    RQ.c.id != (keep_request_id or ""),
                )
                details = (await connection.execute(update(RQ).where(closed).values(details={}))).rowcount
            return {"phone": phones.rowcount, "email": emails.rowcount, "details": details}
