"""Deferred writes (db/driver.py): committed with the unit of work, read back inside it, dropped on rollback.

On PostgreSQL the consent write's event, projection row and message are queued and sent as one statement
before COMMIT; on SQLite they are written at once. Both must behave the same to a caller. A receipt,
inserted at once by `add_many` in the same unit of work, commits and rolls back with them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    ConsentStatus,
    NewConsentEvent,
    Origin,
    Scope,
    apply,
)
from dsr_gateway.domain.privacy_requests import OutboxStatus
from dsr_gateway.domain.receipts import StoredReceipt
from dsr_gateway.services.ports import NewMessage
from tests.support.app import GraphQLClient
from tests.support.consent_factories import seed_catalogue


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


def _event(action: ConsentAction, now: datetime) -> NewConsentEvent:
    actor = Actor(ActorKind.SYSTEM, "system")
    return NewConsentEvent(Scope("marketing_email"), action, ConsentMethod.API, 1, Origin(), actor, now, now)


def _message(subject_id: int) -> NewMessage:
    return NewMessage(
        kind="PERMISSION_CHANGED",
        request_id=None,
        recipient_encrypted=None,
        recipient_hint=None,
        subject_line="changed",
        body="body",
        template_data={"granted": True},
        status=OutboxStatus.NO_ADDRESS,
        subject_id=subject_id,
    )


def _receipt(subject_id: int, now: datetime) -> StoredReceipt:
    return StoredReceipt(str(uuid.uuid4()), subject_id, now, "jws")


async def _write(uow: SqlUnitOfWork, external_id: str, action: ConsentAction) -> tuple[int, int]:
    """One consent change the way the service records it (event, projection row, message), and a receipt.

    The receipt goes first: `add_many` sends what is queued before its own INSERT, so written after the
    others it would send them early and leave nothing deferred to test."""
    now = datetime.now(UTC)
    subject_id = await uow.consents.lock_subject(external_id, now)
    await uow.consent_receipts.add_many([_receipt(subject_id, now)])
    current = (await uow.consents.states([subject_id]))[subject_id]
    (saved,) = await uow.consents.append([(subject_id, _event(action, now))])
    before = next((r for r in current if r.scope == saved.scope), None)
    await uow.consents.save_states([(subject_id, apply(before, saved))])
    await uow.outbox.add_later([_message(subject_id)], now)
    return subject_id, saved.id


async def _counts(engine: AsyncEngine, subject_id: int) -> tuple[int, int, int]:
    async with engine.connect() as connection:
        found = []
        for table in ("consent_state", "consent_receipt", "outbox"):
            query = text(f"SELECT count(*) FROM {table} WHERE subject_id = :s")
            found.append((await connection.execute(query, {"s": subject_id})).scalar_one())
    return found[0], found[1], found[2]


async def test_deferred_rows_are_committed_together(gql: GraphQLClient, engine: AsyncEngine) -> None:
    await seed_catalogue(gql)
    async with SqlUnitOfWork(make_session_factory(engine)) as uow:
        subject_id, _ = await _write(uow, "deferred-1", ConsentAction.GRANT)
        await uow.commit()
    assert await _counts(engine, subject_id) == (1, 1, 1)


async def test_deferred_rows_are_dropped_with_a_rollback(gql: GraphQLClient, engine: AsyncEngine) -> None:
    await seed_catalogue(gql)
    factory = make_session_factory(engine)
    async with SqlUnitOfWork(factory) as uow:
        subject_id = await uow.consents.lock_subject("deferred-2", datetime.now(UTC))
        await uow.commit()
    async with SqlUnitOfWork(factory) as uow:
        await _write(uow, "deferred-2", ConsentAction.GRANT)  # never committed
    async with SqlUnitOfWork(factory) as uow:  # the next unit of work does not send them either
        await uow.consents.lock_subject("deferred-2", datetime.now(UTC))
        await uow.commit()
    assert await _counts(engine, subject_id) == (0, 0, 0)


async def test_a_unit_of_work_reads_its_deferred_rows(gql: GraphQLClient, engine: AsyncEngine) -> None:
    await seed_catalogue(gql)
    async with SqlUnitOfWork(make_session_factory(engine)) as uow:
        subject_id, first = await _write(uow, "deferred-3", ConsentAction.GRANT)
        (record,) = (await uow.consents.states([subject_id]))[subject_id]
        assert record.status is ConsentStatus.GRANTED
        assert record.last_event_id == first
        # The same scope twice in one unit of work: the later row wins.
        _, second = await _write(uow, "deferred-3", ConsentAction.WITHDRAW)
        events = await uow.consents.all_events([subject_id])
        assert [e.id for e in events] == [first, second]
        assert [e.action for e in events] == [ConsentAction.GRANT, ConsentAction.WITHDRAW]
        receipts = await uow.consent_receipts.list_for_subject(subject_id, 10)
        assert len(receipts) == 2
        await uow.commit()
    async with SqlUnitOfWork(make_session_factory(engine)) as uow:
        (record,) = (await uow.consents.states([subject_id]))[subject_id]
    assert record.status is ConsentStatus.WITHDRAWN
    assert record.last_event_id == second
    assert await _counts(engine, subject_id) == (1, 2, 2)


async def test_writes_inside_a_rolled_back_savepoint_are_not_sent_later(
    gql: GraphQLClient, engine: AsyncEngine
) -> None:
    await seed_catalogue(gql)
    factory = make_session_factory(engine)
    async with SqlUnitOfWork(factory) as uow:
        subject_id = await uow.consents.lock_subject("deferred-4", datetime.now(UTC))
        savepoint = await uow.session.begin_nested()
        await uow.consent_receipts.add_many([_receipt(subject_id, datetime.now(UTC))])
        await uow.outbox.add_later([_message(subject_id)], datetime.now(UTC))
        await savepoint.rollback()
        await uow.commit()
    assert await _counts(engine, subject_id) == (0, 0, 0)
