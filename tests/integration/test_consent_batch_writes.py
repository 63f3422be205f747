"""Several subjects' events and projection rows in one unit of work (a group-commit batch; on PostgreSQL
the array statements of consent_batch.py, on the driver alone or on a Session's connection): ids ascend in
the order given, every chain continues from its head and verifies, the projection equals the fold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import DriverUnitOfWork, SqlUnitOfWork
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    NewConsentEvent,
    Origin,
    Scope,
    apply,
    fold,
)
from tests.support.app import GraphQLClient, agent_token, subject_token
from tests.support.consent_factories import choice, seed_catalogue, set_consents

VERIFY = "{ auditVerification { ok eventsChecked brokenChains firstBreak { chain problem } } }"
EMAIL, SMS = Scope("marketing_email", "", "EMAIL"), Scope("marketing_email", "", "SMS")
WIDE = Scope("marketing_email")


def event(scope: Scope, action: ConsentAction, at: datetime, who: str) -> NewConsentEvent:
    origin = Origin(app_id="batch-test", ip="203.0.113.0")
    return NewConsentEvent(
        scope, action, ConsentMethod.API, 1, origin, Actor(ActorKind.API_CLIENT, who), at, at
    )


def unit_of_work(kind: str, database_url: str, engine: Any) -> Callable[[], Any]:
    if kind == "driver":
        if not database_url.startswith("postgresql"):
            pytest.skip("the driver-only unit of work is PostgreSQL's")
        return lambda: DriverUnitOfWork(engine)
    factory = make_session_factory(engine)
    return lambda: SqlUnitOfWork(factory)


@pytest.mark.parametrize("kind", ["session", "driver"])
async def test_a_batch_of_subjects_is_written_in_order_and_its_chains_verify(
    gql: GraphQLClient, database_url: str, kind: str
) -> None:
    await seed_catalogue(gql)
    # batch-a has a chain already (two events: the batch continues from its head); b and c have none.
    await set_consents(gql, choice(), token=subject_token("batch-a"))
    await set_consents(gql, choice(granted=False), token=subject_token("batch-a"))
    engine = make_engine(database_url)
    try:
        uow_factory = unit_of_work(kind, database_url, engine)
        now = datetime.now(UTC)
        async with uow_factory() as uow:
            created = {e: await uow.consents.lock_subject(e, now) for e in ("batch-b", "batch-c")}
            await uow.commit()
        async with uow_factory() as uow:
            ids, held = await uow.consents.lock_many(
                ["batch-c", "batch-a", "batch-b", "batch-a", "batch-new"]
            )
            assert set(ids) == {"batch-a", "batch-b", "batch-c"}  # batch-new: not created yet
            assert held == set()
            assert {ids["batch-b"], ids["batch-c"]} == set(created.values())
            states = await uow.consents.locked_states(sorted(ids.values()))
            assert [r.scope for r in states[ids["batch-a"]]] == [WIDE]
            assert states[ids["batch-b"]] == states[ids["batch-c"]] == []
            a, b, c = ids["batch-a"], ids["batch-b"], ids["batch-c"]
            planned = [
                (c, event(EMAIL, ConsentAction.GRANT, now, "c1")),
                (a, event(WIDE, ConsentAction.GRANT, now, "a1")),
                (b, event(SMS, ConsentAction.GRANT, now, "b1")),
                (a, event(EMAIL, ConsentAction.GRANT, now + timedelta(seconds=1), "a2")),
                (c, event(EMAIL, ConsentAction.WITHDRAW, now + timedelta(seconds=1), "c2")),
            ]
            saved = await uow.consents.append(planned)
            assert [e.subject_id for e in saved] == [s for s, _ in planned]
            assert [e.actor.id for e in saved] == ["c1", "a1", "b1", "a2", "c2"]
            assert [e.id for e in saved] == sorted(e.id for e in saved)  # ascending in the order given
            projection = {s: {r.scope: r for r in records} for s, records in states.items()}
            for recorded in saved:
                mine = projection[recorded.subject_id]
                mine[recorded.scope] = apply(mine.get(recorded.scope), recorded)
            await uow.consents.save_states([(s, r) for s, rows in projection.items() for r in rows.values()])
            await uow.commit()
    finally:
        await engine.dispose()

    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified
    assert verified["eventsChecked"] == 2 + len(planned)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            for subject_id in (a, b, c):
                rows = await connection.execute(
                    text("SELECT sequence FROM consent_event WHERE subject_id = :s ORDER BY id"),
                    {"s": subject_id},
                )
                sequences = list(rows.scalars())
                assert sequences == list(range(1, len(sequences) + 1))  # each chain in id order, no gap
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            stored = await uow.consents.states([a, b, c])
            events = await uow.consents.all_events([a, b, c])
    finally:
        await engine.dispose()
    folded = fold(events)
    for subject_id in (a, b, c):
        assert {r.scope: r for r in stored[subject_id]} == {
            scope: record for (s, scope), record in folded.items() if s == subject_id
        }, subject_id


@pytest.mark.parametrize("kind", ["session", "driver"])
async def test_a_naive_time_is_refused_and_nothing_is_empty_work(
    gql: GraphQLClient, database_url: str, kind: str
) -> None:
    await seed_catalogue(gql)
    engine = make_engine(database_url)
    try:
        uow_factory = unit_of_work(kind, database_url, engine)
        now = datetime.now(UTC)
        async with uow_factory() as uow:
            ids = {e: await uow.consents.lock_subject(e, now) for e in ("naive-a", "naive-b")}
            assert await uow.consents.append([]) == []
            naive = now.replace(tzinfo=None)
            planned = [(i, event(EMAIL, ConsentAction.GRANT, naive, "n")) for i in ids.values()]
            with pytest.raises(ValueError, match="naive datetime"):
                await uow.consents.append(planned)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["session", "driver"])
async def test_lock_many_tells_a_subject_another_transaction_holds_from_one_not_created_yet(
    gql: GraphQLClient, database_url: str, kind: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises its writers: no subject is ever held by another")
    engine = make_engine(database_url)
    try:
        uow_factory = unit_of_work(kind, database_url, engine)
        now = datetime.now(UTC)
        async with uow_factory() as uow:
            created = {e: await uow.consents.lock_subject(e, now) for e in ("free-1", "held-1", "held-2")}
            await uow.commit()
        async with uow_factory() as holder:  # an import holding two of them
            await holder.consents.lock_many(["held-1", "held-2"])
            async with uow_factory() as uow:
                ids, held = await uow.consents.lock_many(["held-2", "free-1", "new-1", "held-1"])
                assert ids == {"free-1": created["free-1"]}
                assert held == {"held-1", "held-2"}  # new-1 is in neither: it is to be created
                found = await uow.consents.lock_with_catalogue("held-1", None, wait=False)
                assert (found.subject_id, found.held) == (None, True)
                found = await uow.consents.lock_with_catalogue("new-1", None, wait=False)
                assert (found.subject_id, found.held) == (None, False)
    finally:
        await engine.dispose()
