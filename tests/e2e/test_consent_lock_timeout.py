"""A consent write waits at most DSR_CONSENT_LOCK_TIMEOUT_SECONDS for a subject another transaction holds (a
consent import holds the subjects it extends, and those it creates, until it commits): then it is answered
ConflictError saying to send it again later, nothing of it is recorded, and its pooled connection is free
again; calls queued behind such writes wait no longer for a turn. PostgreSQL only: SQLite waits its busy
timeout for the database's one write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.domain.errors import HELD_TOO_LONG
from dsr_gateway.services.consent import NO_TURN, UNHELD_LOCK_WAIT
from dsr_gateway.services.group_commit import MAX_ALONE
from tests.support import databases
from tests.support.app import GraphQLClient, client_token, make_settings, subject_token
from tests.support.consent_factories import EVENTS, seed_catalogue, set_consents, withdraw

pytestmark = pytest.mark.postgres
LOCK_TIMEOUT = 0.3
POOL_SIZE = 2
REFUSED = {"__typename": "ConflictError", "message": HELD_TOO_LONG}
NO_TURN_REFUSED = {"__typename": "ConflictError", "message": NO_TURN}
T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float = 30.0) -> T:
    """Fails the test (instead of hanging it) when the call waits for the holder to end."""
    return await asyncio.wait_for(awaitable, seconds)


class Waits(list[float]):
    """The lock timeouts set, and an event set at each."""

    def __init__(self) -> None:
        super().__init__()
        self.added = asyncio.Event()

    def append(self, seconds: float) -> None:
        super().append(seconds)
        self.added.set()

    async def at_least(self, count: int, longer_than: float = 0.0) -> None:
        while len([w for w in self if w > longer_than]) < count:
            self.added.clear()
            await self.added.wait()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Waits:
    """The lock timeouts set: one per transaction that may wait for a held subject."""
    seen = Waits()
    original = SqlConsentLedger.limit_lock_wait

    async def spy(self: SqlConsentLedger, seconds: float) -> None:
        seen.append(seconds)
        await original(self, seconds)

    monkeypatch.setattr(SqlConsentLedger, "limit_lock_wait", spy)
    return seen


@pytest.fixture
async def short_gql(postgres_database: str) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        postgres_database, consent_lock_timeout_seconds=LOCK_TIMEOUT, database_pool_size=POOL_SIZE
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
async def roomy_gql(postgres_database: str) -> AsyncIterator[GraphQLClient]:
    """The default pool: room for every kind of write made on its own."""
    settings = make_settings(postgres_database)  # the default lock timeout (10 s)
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, manager.app)
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


async def _held_subjects(gql: GraphQLClient, holder: asyncpg.Connection, count: int) -> list[str]:
    """The catalogue, and `count` subjects with a grant each, then held by `holder` (as an import holds)."""
    await seed_catalogue(gql)
    held = [f"held-{i}" for i in range(count)]
    for subject in held:
        await set_consents(gql, token=subject_token(subject))
    await holder.execute("SELECT 1 FROM subject WHERE external_id LIKE 'held-%' FOR NO KEY UPDATE")
    return held


async def _write(gql: GraphQLClient, mutation: str, external_id: str) -> dict[str, Any]:
    token = subject_token(external_id)
    if mutation == "setConsents":
        return await set_consents(gql, token=token)
    return await withdraw(gql, token=token, purpose="marketing_email")


@pytest.mark.parametrize("mutation", ["setConsents", "withdrawConsent"])
async def test_a_write_of_a_subject_held_too_long_is_a_conflict_error(
    short_gql: GraphQLClient, holder: asyncpg.Connection, waits: list[float], mutation: str
) -> None:
    await seed_catalogue(short_gql)
    await set_consents(short_gql, token=subject_token("held"))
    before = await _history(short_gql, "held")
    await holder.execute("SELECT 1 FROM subject WHERE external_id = 'held' FOR NO KEY UPDATE")
    waits.clear()

    # One call waits once, not again for each attempt a race would be given; and what it waited before
    # (its batch) counts against the timeout.
    assert await within(_write(short_gql, mutation, "held")) == REFUSED
    assert len(waits) == 1
    assert 0 < waits[0] < LOCK_TIMEOUT

    # More calls than the pool has connections: each is answered (those that spent the timeout waiting
    # for a connection, without waiting for the subject), and gives its connection back.
    results = await within(
        asyncio.gather(*(_write(short_gql, mutation, "held") for _ in range(POOL_SIZE + 2)))
    )
    assert REFUSED in results
    assert all(r in (REFUSED, NO_TURN_REFUSED) for r in results), results
    # The pool is not left exhausted: another subject's write goes through while the holder still holds.
    assert (await set_consents(short_gql, token=subject_token("free")))["__typename"] == "SetConsentsSuccess"
    await holder.execute("ROLLBACK")
    assert await _history(short_gql, "held") == before  # nothing of the refused writes was recorded
    # Once the holder has ended, the same write goes through.
    assert (await _write(short_gql, mutation, "held"))["__typename"].endswith("Success")


async def test_calls_queued_behind_held_writes_wait_no_longer_than_the_timeout_in_all(
    short_gql: GraphQLClient, holder: asyncpg.Connection, waits: list[float]
) -> None:
    held = await _held_subjects(short_gql, holder, 3 * MAX_ALONE)
    waits.clear()

    results = await within(asyncio.gather(*(_write(short_gql, "withdrawConsent", s) for s in held)))

    # The first calls waited for their subjects (as many as turns and pooled connections allow); the
    # calls behind them gave up when the timeout was spent waiting for a turn or a connection, instead of
    # waiting for a held subject each, one after another.
    assert 1 <= len(waits) < len(held)
    assert all(w < LOCK_TIMEOUT for w in waits)  # what they waited before counted: the timeout in all
    assert results.count(REFUSED) == len(waits)
    assert results.count(NO_TURN_REFUSED) == len(held) - len(waits)


async def test_a_write_for_a_subject_being_created_elsewhere_is_a_conflict_error(
    short_gql: GraphQLClient, holder: asyncpg.Connection
) -> None:
    await seed_catalogue(short_gql)
    # The import creates the subject; its row is not committed yet.
    await holder.execute("INSERT INTO subject (external_id, created_at) VALUES ('arriving', now())")

    result = await within(set_consents(short_gql, token=subject_token("arriving")))

    assert result == REFUSED
    await holder.execute("ROLLBACK")
    assert await _history(short_gql, "arriving") == []
    again = await set_consents(short_gql, token=subject_token("arriving"))
    assert again["__typename"] == "SetConsentsSuccess"


async def test_writes_waiting_for_held_subjects_leave_a_new_subjects_write_its_turn(
    roomy_gql: GraphQLClient, holder: asyncpg.Connection, waits: Waits
) -> None:
    held = await _held_subjects(roomy_gql, holder, 2 * MAX_ALONE)
    waits.clear()
    waiting = asyncio.gather(*(_write(roomy_gql, "withdrawConsent", s) for s in held))
    await within(waits.at_least(MAX_ALONE))  # every turn for held subjects taken, more calls queue for one

    # A signup's first write (its subject is created) does not queue behind them for a turn: it is
    # answered while they still wait (well within the lock timeout they may wait).
    result = await within(set_consents(roomy_gql, token=subject_token("signup")), 5.0)

    assert result["__typename"] == "SetConsentsSuccess"
    assert not waiting.done()
    await holder.execute("ROLLBACK")  # the import ends: the held writes go through
    assert all(r["__typename"] == "WithdrawConsentSuccess" for r in await within(waiting))


async def test_writes_for_subjects_an_import_is_creating_leave_a_new_subjects_write_its_turn(
    roomy_gql: GraphQLClient, holder: asyncpg.Connection, waits: Waits
) -> None:
    await seed_catalogue(roomy_gql)
    arriving = [f"arriving-{i}" for i in range(2 * MAX_ALONE)]
    # The import creates them: their rows are not committed, so nothing shows them held.
    await holder.execute(
        "INSERT INTO subject (external_id, created_at) SELECT unnest($1::text[]), now()", arriving
    )
    waiting = asyncio.gather(*(set_consents(roomy_gql, token=subject_token(s)) for s in arriving))
    # Each tried a moment as a new subject's write, then queued for a turn of the writes that may wait.
    await within(waits.at_least(MAX_ALONE, longer_than=UNHELD_LOCK_WAIT))

    result = await within(set_consents(roomy_gql, token=subject_token("signup")), 5.0)

    assert result["__typename"] == "SetConsentsSuccess"
    assert not waiting.done()
    await holder.execute("ROLLBACK")  # the import failed: the writes create the subjects themselves
    assert all(r["__typename"] == "SetConsentsSuccess" for r in await within(waiting))
    assert len(await _history(roomy_gql, "arriving-0")) == 1
