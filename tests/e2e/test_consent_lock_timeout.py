"""A consent write waits at most DSR_DATABASE_LOCK_TIMEOUT_SECONDS for a subject another transaction holds (a
consent import holds the subjects it extends, and those it creates, until it commits): then it is answered
ConflictError saying to send it again later, nothing of it is recorded, and its pooled connection is free
again. PostgreSQL only: SQLite waits its busy timeout for the database's one write lock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from dsr_gateway.db.uow import HELD_TOO_LONG
from dsr_gateway.services.consent import WRITE_ATTEMPTS
from tests.support import databases
from tests.support.app import GraphQLClient, client_token, make_settings, subject_token
from tests.support.consent_factories import EVENTS, seed_catalogue, set_consents, withdraw

pytestmark = pytest.mark.postgres
LOCK_TIMEOUT = 0.3
POOL_SIZE = 2
REFUSED = {"__typename": "ConflictError", "message": HELD_TOO_LONG}


@pytest.fixture
async def short_gql(postgres_database: str) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        postgres_database, database_lock_timeout_seconds=LOCK_TIMEOUT, database_pool_size=POOL_SIZE
    )
    application = create_app(settings)
    try:
        async with (
            LifespanManager(application) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
            ) as http,
        ):
            yield GraphQLClient(http, manager.app)
    finally:
        await databases.truncate_all(postgres_database)


@pytest.fixture
async def holder(postgres_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection with a transaction open, as an import's (the test ends it; closing rolls back)."""
    connection = await asyncpg.connect(databases.asyncpg_dsn(postgres_database))
    await connection.execute("BEGIN")
    try:
        yield connection
    finally:
        await connection.close()


async def _history(gql: GraphQLClient, external_id: str) -> list[dict[str, Any]]:
    data = await gql(EVENTS, {"subjectId": external_id}, token=client_token("consent:read"))
    edges: list[dict[str, Any]] = data["consentEvents"]["edges"]
    return edges


async def _write(gql: GraphQLClient, mutation: str, external_id: str) -> dict[str, Any]:
    token = subject_token(external_id)
    if mutation == "setConsents":
        return await set_consents(gql, token=token)
    return await withdraw(gql, token=token, purpose="marketing_email")


@pytest.mark.parametrize("mutation", ["setConsents", "withdrawConsent"])
async def test_a_write_of_a_subject_held_too_long_is_a_conflict_error(
    short_gql: GraphQLClient, holder: asyncpg.Connection, mutation: str
) -> None:
    await seed_catalogue(short_gql)
    await set_consents(short_gql, token=subject_token("held"))
    before = await _history(short_gql, "held")
    await holder.execute("SELECT 1 FROM subject WHERE external_id = 'held' FOR NO KEY UPDATE")

    # One call waits its lock timeout once: not again for each of the attempts a race would be given.
    started = time.monotonic()
    assert await _write(short_gql, mutation, "held") == REFUSED
    assert time.monotonic() - started < WRITE_ATTEMPTS * LOCK_TIMEOUT

    # More calls than the pool has connections: each waits its lock timeout, then gives its connection back.
    started = time.monotonic()
    results = await asyncio.gather(*(_write(short_gql, mutation, "held") for _ in range(POOL_SIZE + 2)))
    elapsed = time.monotonic() - started

    assert results == [REFUSED] * (POOL_SIZE + 2)
    assert elapsed < 10 * LOCK_TIMEOUT * (POOL_SIZE + 2)  # bounded: not until the holder ends
    # The pool is not left exhausted: another subject's write goes through while the holder still holds.
    assert (await set_consents(short_gql, token=subject_token("free")))["__typename"] == "SetConsentsSuccess"
    await holder.execute("ROLLBACK")
    assert await _history(short_gql, "held") == before  # nothing of the refused writes was recorded
    # Once the holder has ended, the same write goes through.
    assert (await _write(short_gql, mutation, "held"))["__typename"].endswith("Success")


async def test_a_write_for_a_subject_being_created_elsewhere_is_a_conflict_error(
    short_gql: GraphQLClient, holder: asyncpg.Connection
) -> None:
    await seed_catalogue(short_gql)
    # The import creates the subject; its row is not committed yet.
    await holder.execute("INSERT INTO subject (external_id, created_at) VALUES ('arriving', now())")

    result = await set_consents(short_gql, token=subject_token("arriving"))

    assert result == REFUSED
    await holder.execute("ROLLBACK")
    assert await _history(short_gql, "arriving") == []
    again = await set_consents(short_gql, token=subject_token("arriving"))
    assert again["__typename"] == "SetConsentsSuccess"
