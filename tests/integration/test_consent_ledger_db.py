"""The ledger under concurrency, the changes feed around open transactions, and append-only by design."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.db.repositories.consent_reads import SqlConsentReader
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    NewConsentEvent,
    Origin,
    Scope,
    fold,
)
from dsr_gateway.domain.consent_rules import ConsentChoice
from dsr_gateway.domain.errors import Conflict
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_writes import SetConsentsRequest
from dsr_gateway.services.ports import ConsentLedger
from tests.support import databases
from tests.support.app import GraphQLClient, agent_token, client_token, subject_token
from tests.support.consent_factories import EVENTS, SET_CONSENTS, WITHDRAW, choice, seed_catalogue

MUTATING_WORDS = ("update", "delete", "remove", "replace", "edit", "truncate", "amend")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


def test_the_ledger_api_offers_no_way_to_change_or_delete_an_event() -> None:
    for api in (SqlConsentLedger, ConsentLedger):
        names = [n for n, _ in inspect.getmembers(api, inspect.isfunction) if not n.startswith("__")]
        assert "append" in names
        assert [n for n in names if any(w in n for w in MUTATING_WORDS)] == [], api


# One choice per call takes the single-row statements (on the driver on PostgreSQL), two the multi-row ones.
@pytest.mark.parametrize("per_call", [1, 2])
async def test_concurrent_writes_leave_the_projection_equal_to_the_fold_of_events(
    gql: GraphQLClient, engine: AsyncEngine, per_call: int
) -> None:
    await seed_catalogue(gql)
    tokens = [subject_token(), agent_token(), client_token("consent:write")]

    def call(i: int) -> asyncio.Future[dict[str, object]]:
        token = tokens[i % 3]
        if i % 7 == 6:
            return asyncio.ensure_future(
                gql(
                    WITHDRAW,
                    {"input": {"subjectId": "customer-1", "purpose": "marketing_email"}},
                    token=token,
                )
            )
        choices = [choice(granted=i % 2 == 0), choice(topic="promotions", granted=i % 3 == 0)][:per_call]
        method = None if token == tokens[1] else "CHECKBOX"
        values = {"subjectId": "customer-1", "choices": choices, "noticeVersion": 1, "method": method}
        return asyncio.ensure_future(gql(SET_CONSENTS, {"input": values}, token=token))

    results = await asyncio.gather(*(call(i) for i in range(40)))
    assert all("Success" in str(r) for r in results), results

    async with SqlUnitOfWork(make_session_factory(engine)) as uow:
        subject_id = await uow.consents.lock_subject("customer-1", datetime.now(UTC))
        events = await uow.consents.all_events([subject_id])
        projection = (await uow.consents.states([subject_id]))[subject_id]
    assert len(events) >= 40
    folded = {scope: record for (_, scope), record in fold(events).items()}
    assert {r.scope: r for r in projection} == folded
    # Live writes take their time under the subject's lock: the last event of each scope is the state.
    last = {e.scope: e.id for e in events}
    assert {r.scope: r.last_event_id for r in projection} == last


def _event(now: datetime) -> NewConsentEvent:
    return NewConsentEvent(
        Scope("marketing_email"),
        ConsentAction.GRANT,
        ConsentMethod.API,
        1,
        Origin(),
        Actor(ActorKind.SYSTEM, "system"),
        now,
        now,
    )


async def test_the_feed_never_passes_an_event_still_being_written(
    gql: GraphQLClient, engine: AsyncEngine, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers: an earlier id can never commit after a later one")
    await seed_catalogue(gql)
    reader = client_token("consent:read")
    slow = SqlUnitOfWork(make_session_factory(engine))
    async with slow as uow:
        # A transaction takes an id (and its place in the feed), then stays open ...
        subject_id = await uow.consents.lock_subject("slow", datetime.now(UTC))
        await uow.consents.append([(subject_id, _event(datetime.now(UTC)))])
        # ... while a later one commits.
        data = await gql(
            SET_CONSENTS, {"input": {"choices": [choice()], "noticeVersion": 1}}, token=subject_token()
        )
        assert data["setConsents"]["__typename"] == "SetConsentsSuccess"
        page = (await gql(EVENTS, {"since": ""}, token=reader))["consentEvents"]
        # The committed event waits behind the open transaction rather than be skipped later.
        assert page["edges"] == []
        cursor = page["pageInfo"]["endCursor"]
        await uow.commit()
    # Poll as a mirroring client does: other writers on a shared server may hold the feed back a while.
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(seen) < 2 and asyncio.get_running_loop().time() < deadline:
        page = (await gql(EVENTS, {"since": cursor}, token=reader))["consentEvents"]
        seen.extend(e["node"]["subjectId"] for e in page["edges"])
        cursor = page["pageInfo"]["endCursor"]
        if not page["edges"]:
            await asyncio.sleep(0.05)
    assert seen == ["slow", "customer-1"]
    again = (await gql(EVENTS, {"since": cursor}, token=reader))["consentEvents"]
    assert again["edges"] == []


async def test_an_open_transaction_of_another_database_does_not_hold_the_feed_back(
    gql: GraphQLClient, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no other database's transactions")
    await seed_catalogue(gql)
    reader = client_token("consent:read")
    # A writing transaction left open on the same server, in another database (the tests connect as a
    # superuser, who sees its id) ...
    server = make_url(databases.postgres_server_url())
    assert server.database != make_url(database_url).database
    elsewhere = await asyncpg.connect(databases.asyncpg_dsn(databases.postgres_server_url()))
    try:
        transaction = elsewhere.transaction()
        await transaction.start()
        await elsewhere.fetchval("SELECT pg_current_xact_id()")  # takes a transaction id
        data = await gql(
            SET_CONSENTS, {"input": {"choices": [choice()], "noticeVersion": 1}}, token=subject_token()
        )
        assert data["setConsents"]["__typename"] == "SetConsentsSuccess"
        # ... does not hold back this database's committed event.
        page = (await gql(EVENTS, {"since": ""}, token=reader))["consentEvents"]
        assert [e["node"]["subjectId"] for e in page["edges"]] == ["customer-1"]
        await transaction.rollback()
    finally:
        await elsewhere.close()


async def test_a_writer_holds_off_other_writers_of_its_subject_but_not_rows_that_name_it(
    gql: GraphQLClient, engine: AsyncEngine, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite locks the database, not rows")
    await seed_catalogue(gql)
    await gql(
        SET_CONSENTS, {"input": {"choices": [choice()], "noticeVersion": 1}}, token=subject_token("named")
    )
    async with SqlUnitOfWork(make_session_factory(engine)) as writer:
        subject_id = await writer.consents.lock_subject("named", datetime.now(UTC))
        async with engine.connect() as other:
            await other.execute(text("SET lock_timeout = '2s'"))
            # A foreign-key check of a row naming the subject (a receipt, an outbox row) does not wait ...
            await other.execute(
                text("SELECT 1 FROM subject WHERE id = :id FOR KEY SHARE"), {"id": subject_id}
            )
            await other.rollback()
            # ... another writer of the subject does.
            with pytest.raises(Exception, match="could not obtain lock"):
                await other.execute(
                    text("SELECT 1 FROM subject WHERE id = :id FOR NO KEY UPDATE NOWAIT"), {"id": subject_id}
                )
            await other.rollback()


class Deadlock(Exception):
    """What the database answers a transaction it chose as a deadlock's victim (SQLSTATE 40P01)."""

    sqlstate = "40P01"


class DeadlockOnFirstCommits:
    """The real unit of work, whose first `failures` commits the database refuses as a deadlock."""

    def __init__(self, uow: SqlUnitOfWork, refused: list[int], failures: int) -> None:
        self._uow, self._refused, self._failures = uow, refused, failures

    async def __aenter__(self) -> SqlUnitOfWork:
        uow = await self._uow.__aenter__()
        commit = uow.commit

        async def refusing() -> None:
            if self._refused[0] < self._failures:
                self._refused[0] += 1
                raise Deadlock("deadlock detected")
            await commit()

        uow.commit = refusing  # type: ignore[method-assign]
        return uow

    async def __aexit__(self, *exc: Any) -> None:
        await self._uow.__aexit__(*exc)


@pytest.mark.parametrize(("failures", "recorded"), [(0, True), (2, True), (3, False)])
async def test_a_write_the_database_gave_up_for_another_is_tried_again(
    gql: GraphQLClient, engine: AsyncEngine, failures: int, recorded: bool
) -> None:
    await seed_catalogue(gql)
    factory = make_session_factory(engine)
    refused = [0]
    service = ConsentService(
        lambda: DeadlockOnFirstCommits(SqlUnitOfWork(factory), refused, failures),  # type: ignore[arg-type,return-value]
        lambda: datetime.now(UTC),
        SqlConsentReader(engine),
    )
    request = SetConsentsRequest("retry-1", [ConsentChoice("marketing_email", True)], notice_version=1)
    principal = Principal(PrincipalKind.SUBJECT, id="retry-1")
    if recorded:
        change = await service.set_consents(principal, request)
        assert [e.action for e in change.events] == [ConsentAction.GRANT]
    else:  # three refusals in a row: the caller gets the Conflict, nothing recorded
        with pytest.raises(Conflict, match="send it again"):
            await service.set_consents(principal, request)
    assert refused[0] == failures
    history = await gql(EVENTS, {"subjectId": "retry-1"}, token=agent_token())
    assert len(history["consentEvents"]["edges"]) == (1 if recorded else 0)
