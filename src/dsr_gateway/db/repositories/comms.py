"""The communication area's reads and writes: contacts, review queries, campaign sends, GPC, breaches.

Core statements on the unit of work's connection; every list comes in keyset pages or `IN` batches.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import DriverStatement
from dsr_gateway.db.tables.comms import (
    BreachNoticeRow,
    BreachRecipientRow,
    CampaignSendRow,
    GpcSignalRow,
    SubjectContactRow,
)
from dsr_gateway.db.tables.consent import ConsentStateRow
from dsr_gateway.db.tables.identity import SubjectIdentityRow
from dsr_gateway.db.tables.subjects import SubjectRow
from dsr_gateway.domain.consent import ConsentStatus
from dsr_gateway.services.comms.ports import Contact, GpcSignal

CONTACTS = SubjectContactRow.__table__  # type: ignore[attr-defined]
SENDS = CampaignSendRow.__table__  # type: ignore[attr-defined]
GPC = GpcSignalRow.__table__  # type: ignore[attr-defined]
BREACHES = BreachNoticeRow.__table__  # type: ignore[attr-defined]
BREACH_TO = BreachRecipientRow.__table__  # type: ignore[attr-defined]
STATES = ConsentStateRow.__table__  # type: ignore[attr-defined]
IDENT = SubjectIdentityRow.__table__  # type: ignore[attr-defined]
SUBJECTS = SubjectRow.__table__  # type: ignore[attr-defined]
CHUNK = 1000

# Built once (every consent change made by someone else reads its subject's contact): the subject's own
# address, else the newest one it gave in a privacy request (COALESCE reads that only when needed).
_NEWEST_IDENTITY_EMAIL = (
    select(IDENT.c.email_encrypted)
    .where(IDENT.c.subject_id == SUBJECTS.c.id, IDENT.c.email_encrypted.is_not(None))
    .order_by(IDENT.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_CONTACT = select(
    SUBJECTS.c.id,
    SUBJECTS.c.external_id,
    func.coalesce(CONTACTS.c.email_encrypted, _NEWEST_IDENTITY_EMAIL).label("email_encrypted"),
    CONTACTS.c.language,
).select_from(SUBJECTS.outerjoin(CONTACTS, CONTACTS.c.subject_id == SUBJECTS.c.id))
CONTACTS_OF = _CONTACT.where(SUBJECTS.c.id.in_(bindparam("ids", expanding=True)))
CONTACT_OF = DriverStatement(_CONTACT.where(SUBJECTS.c.id == bindparam("id")))


# The consent write locks its subject and reads the contact in the same statement (repositories/consent.py).
def contact_from(row: Mapping[str, Any]) -> Contact:
    return Contact(row["id"], row["external_id"], row["email_encrypted"], row["language"])


class SqlCommsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._postgres = session.bind is not None and session.bind.dialect.name == "postgresql"

    async def _run(self, statement: Any, params: Any = None) -> Any:
        return await (await self._session.connection()).execute(statement, params)

    # --- contacts ---------------------------------------------------------------------------------

    async def contacts(self, subject_ids: Collection[int]) -> dict[int, Contact]:
        """Each subject's address and language: `subject_contact` first, else the newest address the
        subject gave in a privacy request. One statement per 1,000 subjects."""
        found: dict[int, Contact] = {}
        ids = list(dict.fromkeys(subject_ids))
        if len(ids) == 1:
            for r in await CONTACT_OF.run(self._session, {"id": ids[0]}):
                found[r["id"]] = contact_from(r)
            return found
        for start in range(0, len(ids), CHUNK):
            for r in await self._run(CONTACTS_OF, {"ids": ids[start : start + CHUNK]}):
                found[r.id] = Contact(r.id, r.external_id, r.email_encrypted, r.language)
        return found

    async def set_contact(
        self, subject_id: int, email_encrypted: str | None, hint: str | None, language: str | None,
        now: datetime,
    ) -> None:  # fmt: skip
        insert = pg_insert if self._postgres else sqlite_insert
        values = {
            "email_encrypted": email_encrypted,
            "email_hint": hint,
            "language": language,
            "updated_at": now,
        }
        statement = insert(CONTACTS).values(subject_id=subject_id, **values)
        await self._run(statement.on_conflict_do_update(index_elements=["subject_id"], set_=values))

    # --- reviews ----------------------------------------------------------------------------------

    async def granted_given_before(
        self, purpose: str, given_before: datetime, after: tuple[datetime, int, str, str] | None, limit: int
    ) -> list[tuple[int, str, str, str, datetime]]:
        """Granted records of `purpose` given (or last reconfirmed) before the instant, oldest first, by
        keyset (given_at, subject, topic, channel): the index ix_consent_state_review serves it."""
        key = tuple_(STATES.c.given_at, STATES.c.subject_id, STATES.c.topic, STATES.c.channel)
        query = (
            select(
                STATES.c.subject_id,
                SUBJECTS.c.external_id,
                STATES.c.topic,
                STATES.c.channel,
                STATES.c.given_at,
            )
            .join(SUBJECTS, SUBJECTS.c.id == STATES.c.subject_id)
            .where(
                STATES.c.purpose_key == purpose,
                STATES.c.status == ConsentStatus.GRANTED.value,
                STATES.c.given_at < given_before,
            )
            .order_by(STATES.c.given_at, STATES.c.subject_id, STATES.c.topic, STATES.c.channel)
            .limit(limit)
        )
        if after is not None:
            # A row-value comparison (PostgreSQL, SQLite >= 3.15): the page continues after the cursor.
            query = query.where(key > tuple_(*(literal(v) for v in after)))
        return [(r[0], r[1], r[2], r[3], r[4]) for r in await self._run(query)]

    async def recently_sent(self, purpose: str, subject_ids: Collection[int], since: datetime) -> set[int]:
        sent: set[int] = set()
        ids = list(subject_ids)
        for start in range(0, len(ids), CHUNK):
            rows = await self._run(
                select(SENDS.c.subject_id).where(
                    SENDS.c.purpose_key == purpose,
                    SENDS.c.subject_id.in_(ids[start : start + CHUNK]),
                    SENDS.c.sent_at >= since,
                )
            )
            sent.update(rows.scalars())
        return sent

    async def record_sends(
        self, campaign: str, purpose: str, sends: Sequence[tuple[int, int]], now: datetime
    ) -> None:
        if sends:
            await self._run(
                SENDS.insert(),
                [
                    {
                        "campaign": campaign,
                        "subject_id": s,
                        "purpose_key": purpose,
                        "outbox_id": o,
                        "sent_at": now,
                    }
                    for s, o in sends
                ],
            )

    # --- who to tell ------------------------------------------------------------------------------

    async def subjects_with_consent(
        self, purposes: Collection[str] | None, after_subject_id: int, limit: int
    ) -> list[tuple[int, str, list[str]]]:
        """Subjects (by id, after `after_subject_id`) with a granted consent to one of `purposes`, or with
        any recorded choice when `purposes` is None; each with the purposes concerned. Two statements."""
        filters: list[Any] = []
        if purposes is not None:
            filters = [
                STATES.c.purpose_key.in_(list(purposes)),
                STATES.c.status == ConsentStatus.GRANTED.value,
            ]
        page = (
            select(STATES.c.subject_id)
            .where(STATES.c.subject_id > after_subject_id, *filters)
            .group_by(STATES.c.subject_id)
            .order_by(STATES.c.subject_id)
            .limit(limit)
        )
        ids = list((await self._run(page)).scalars())
        if not ids:
            return []
        rows = await self._run(
            select(STATES.c.subject_id, SUBJECTS.c.external_id, STATES.c.purpose_key)
            .join(SUBJECTS, SUBJECTS.c.id == STATES.c.subject_id)
            .where(STATES.c.subject_id.in_(ids), *filters)
            .distinct()
        )
        by_subject: dict[int, tuple[str, list[str]]] = {}
        for r in rows:
            by_subject.setdefault(r.subject_id, (r.external_id, []))[1].append(r.purpose_key)
        return [(i, by_subject[i][0], sorted(by_subject[i][1])) for i in ids if i in by_subject]

    async def subjects_with_records(
        self, purposes: Collection[str], after_subject_id: int, limit: int
    ) -> list[int]:
        """Subjects with any recorded choice (any state) about one of `purposes`, by id."""
        rows = await self._run(
            select(STATES.c.subject_id)
            .where(STATES.c.subject_id > after_subject_id, STATES.c.purpose_key.in_(list(purposes)))
            .group_by(STATES.c.subject_id)
            .order_by(STATES.c.subject_id)
            .limit(limit)
        )
        return list(rows.scalars())

    async def subjects_page(self, after_subject_id: int, limit: int) -> list[tuple[int, str]]:
        rows = await self._run(
            select(SUBJECTS.c.id, SUBJECTS.c.external_id)
            .where(SUBJECTS.c.id > after_subject_id)
            .order_by(SUBJECTS.c.id)
            .limit(limit)
        )
        return [(r.id, r.external_id) for r in rows]

    # --- GPC --------------------------------------------------------------------------------------

    async def gpc_signals(self, subject_ids: Collection[int]) -> dict[int, list[GpcSignal]]:
        found: dict[int, list[GpcSignal]] = {s: [] for s in subject_ids}
        ids = list(subject_ids)
        for start in range(0, len(ids), CHUNK):
            rows = await self._run(
                select(GPC)
                .where(GPC.c.subject_id.in_(ids[start : start + CHUNK]))
                .order_by(GPC.c.purpose_key)
            )
            for r in rows:
                found[r.subject_id].append(
                    GpcSignal(r.purpose_key, r.event_id, r.conflict, r.granted_at, r.recorded_at)
                )
        return found

    async def add_gpc_signals(self, subject_id: int, signals: Sequence[GpcSignal]) -> None:
        if signals:
            await self._run(
                GPC.insert(),
                [
                    {
                        "subject_id": subject_id,
                        "purpose_key": s.purpose,
                        "event_id": s.event_id,
                        "conflict": s.conflict,
                        "granted_at": s.granted_at,
                        "recorded_at": s.recorded_at,
                    }
                    for s in signals
                ],
            )

    # --- breach notices ---------------------------------------------------------------------------

    async def add_breach(
        self, systems: Sequence[str], categories: Sequence[str], details: dict[str, Any], created_by: str,
        now: datetime,
    ) -> int:  # fmt: skip
        result = await self._run(
            BREACHES.insert()
            .values(
                systems=list(systems),
                data_categories=list(categories),
                details=details,
                recipients=0,
                created_by=created_by,
                created_at=now,
            )
            .returning(BREACHES.c.id)
        )
        return int(result.scalar_one())

    async def record_breach_recipients(
        self, breach_id: int, sends: Sequence[tuple[int, int]], now: datetime
    ) -> None:
        if sends:
            await self._run(
                BREACH_TO.insert(),
                [{"breach_id": breach_id, "subject_id": s, "outbox_id": o, "sent_at": now} for s, o in sends],
            )
            await self._run(
                BREACHES.update()
                .where(BREACHES.c.id == breach_id)
                .values(recipients=BREACHES.c.recipients + len(sends))
            )

    async def breach_recipient_count(self, breach_id: int) -> int:
        result = await self._run(
            select(func.count()).select_from(BREACH_TO).where(BREACH_TO.c.breach_id == breach_id)
        )
        return int(result.scalar_one())
