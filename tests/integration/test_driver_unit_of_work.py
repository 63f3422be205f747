"""The driver-only unit of work of the consent write path (db/uow.py DriverUnitOfWork), on PostgreSQL:
all or nothing, its connection back in the pool either way, a killed connection replaced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.migrate import upgrade
from dsr_gateway.db.uow import DriverUnitOfWork
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    ConsentRecord,
    ConsentStatus,
    NewConsentEvent,
    Origin,
    Scope,
)
from tests.support.app import GraphQLClient
from tests.support.consent_factories import seed_catalogue


@pytest.fixture
async def engine(database_url: str, gql: GraphQLClient) -> AsyncIterator[AsyncEngine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the driver-only unit of work is PostgreSQL's")
    await seed_catalogue(gql)
    engine = make_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


def grant(now: datetime) -> NewConsentEvent:
    actor = Actor(ActorKind.SUBJECT, "d-1")
    return NewConsentEvent(
        Scope("marketing_email"), ConsentAction.GRANT, ConsentMethod.CHECKBOX, 1, Origin(), actor, now, now
    )


async def write(engine: AsyncEngine, external_id: str, *, commit: bool) -> None:
    async with DriverUnitOfWork(engine) as uow:
        now = datetime.now(UTC)
        subject = await uow.consents.lock_subject(external_id, now)
        current = await uow.consents.states([subject])
        assert current == {subject: []}
        (event,) = await uow.consents.append([(subject, grant(now))])
        await uow.consents.save_states(
            [(subject, _granted(event.scope, event.id, now))]  # one row: deferred to the commit
        )
        if commit:
            await uow.commit()


def _granted(scope: Scope, event_id: int, now: datetime) -> ConsentRecord:
    return ConsentRecord(scope, ConsentStatus.GRANTED, ConsentMethod.CHECKBOX, 1, now, now, event_id)


async def counts(engine: AsyncEngine, external_id: str) -> tuple[int, int, int]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM subject WHERE external_id = :e), "
                    "(SELECT count(*) FROM consent_event e JOIN subject s ON s.id = e.subject_id "
                    " WHERE s.external_id = :e), "
                    "(SELECT count(*) FROM consent_state c JOIN subject s ON s.id = c.subject_id "
                    " WHERE s.external_id = :e)"
                ),
                {"e": external_id},
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def test_a_committed_write_is_all_there_and_an_uncommitted_one_is_not(engine: AsyncEngine) -> None:
    await write(engine, "d-1", commit=True)
    await write(engine, "d-2", commit=False)
    assert await counts(engine, "d-1") == (1, 1, 1)
    assert await counts(engine, "d-2") == (0, 0, 0)  # the subject created on first use went too
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def reach_around(engine: AsyncEngine) -> None:
    async with DriverUnitOfWork(engine) as uow:
        await uow.consents.lock_subject("d-3", datetime.now(UTC))
        await uow.session.exec(select(1))  # would run on another connection, outside the transaction


async def killed_mid_write(engine: AsyncEngine) -> None:
    async with DriverUnitOfWork(engine) as uow:
        await uow.consents.lock_subject("d-4", datetime.now(UTC))
        async with engine.connect() as other:  # an administrator ends the session
            pid = await uow._driver.fetchval("SELECT pg_backend_pid()")
            await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await uow.consents.states([1])


async def test_its_session_refuses_to_reach_the_database_another_way(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError, match="driver only"):
        await reach_around(engine)
    assert await counts(engine, "d-3") == (0, 0, 0)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_connection_killed_mid_write_is_replaced(engine: AsyncEngine) -> None:
    # asyncpg raises one of these, depending on when the server's notice arrives.
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
        await killed_mid_write(engine)
    await write(engine, "d-5", commit=True)  # the next unit of work gets a live connection
    assert await counts(engine, "d-5") == (1, 1, 1)
