"""setConsents and withdrawConsent calls made at the same time (written together,
services/group_commit.py): each call is recorded once and all or nothing, a refused call refuses only
itself, an idempotency key used twice records once, and every subject's projection agrees with its last
event; the chains verify."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.db.repositories.consent_reads import SqlConsentReader
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent import Actor, ActorKind, ConsentMethod
from dsr_gateway.domain.consent_rules import ConsentChoice
from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_writes import BatchWriter, SetCall, SetConsentsRequest
from tests.support.app import GraphQLClient, agent_token, client_token, subject_token
from tests.support.consent_factories import (
    EVENTS,
    SET_CONSENTS,
    WITHDRAW,
    check,
    choice,
    seed_catalogue,
    set_consents,
)
from tests.support.followups import follow_up

READER = client_token("consent:read")
VERIFY = "{ auditVerification { ok eventsChecked } }"
SUBJECTS = [f"gc-{i}" for i in range(8)]


async def _most_subjects_in_one_transaction(database_url: str, actions: tuple[str, ...]) -> int:
    """The most subjects whose events of these actions one transaction wrote (PostgreSQL's tx_order)."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            counts = await connection.execute(
                text(
                    "SELECT count(DISTINCT subject_id) FROM consent_event WHERE action = ANY(:actions) "
                    "GROUP BY tx_order ORDER BY 1 DESC"
                ),
                {"actions": list(actions)},
            )
            return int(next(iter(counts))[0])
    finally:
        await engine.dispose()


async def _granted_subjects(gql: GraphQLClient) -> None:
    """The catalogue, and SUBJECTS as existing subjects, each with a grant."""
    await seed_catalogue(gql)
    for subject in SUBJECTS:
        await set_consents(gql, choice(), token=subject_token(subject))


def call(subject: str, *choices: dict[str, Any], **fields: Any) -> tuple[str, dict[str, Any]]:
    values = {"choices": list(choices), "noticeVersion": 1, "method": "CHECKBOX", **fields}
    return subject, values


async def test_calls_made_together_are_each_recorded_once_and_all_or_nothing(
    gql: GraphQLClient, database_url: str
) -> None:
    await _granted_subjects(gql)
    calls = [call(s, choice(granted=False)) for s in SUBJECTS[:5]]
    calls += [
        call("gc-0", choice(granted=True)),  # a second call for one subject in the same batch
        call("gc-5", choice(), choice("nope")),  # refused: nothing of it recorded
        call("gc-6", choice(granted=False), idempotencyKey="k-6"),
        call("gc-6", choice(granted=False), idempotencyKey="k-6"),  # the app's retry: recorded once
        call("gc-new", choice()),  # a subject not created yet
        call("gc-7", choice("analytics", granted=False), choice(granted=False)),
    ]
    answers = await asyncio.gather(
        *(gql(SET_CONSENTS, {"input": values}, token=subject_token(subject)) for subject, values in calls)
    )
    results = [a["setConsents"] for a in answers]
    kinds = [r["__typename"] for r in results]
    assert kinds[6] == "ValidationError"
    assert kinds.count("SetConsentsSuccess") == len(calls) - 1
    assert sorted(r["replayed"] for r in results[7:9]) == [False, True]
    assert results[7]["events"] == results[8]["events"]

    # Every subject's projection agrees with its last event (and the refused call left gc-5 as it was).
    for subject in [*SUBJECTS, "gc-new"]:
        history = await gql(EVENTS, {"subjectId": subject, "first": 50}, token=agent_token())
        actions = [e["node"]["action"] for e in history["consentEvents"]["edges"]
                   if e["node"]["purpose"] == "marketing_email"]  # fmt: skip
        [decision] = await check(gql, [subject], READER)
        assert decision["allowed"] is (actions[0] == "GRANT"), (subject, actions, decision)
        if subject == "gc-5":
            assert actions == ["GRANT"]
        if subject == "gc-6":
            assert actions == ["WITHDRAW", "GRANT"]

    recorded = len(SUBJECTS) + 5 + 1 + 1 + 1 + 2  # seeds, five withdrawals, gc-0, gc-6 once, gc-new, gc-7
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified == {"ok": True, "eventsChecked": recorded}
    if database_url.startswith("postgresql"):
        # Written together: some transaction wrote the events of more than one subject.
        assert await _most_subjects_in_one_transaction(database_url, ("GRANT", "WITHDRAW", "OBJECT")) > 1


async def test_withdrawals_made_together_are_each_recorded_once_and_all_or_nothing(
    gql: GraphQLClient, database_url: str
) -> None:
    await _granted_subjects(gql)
    marketing = {"purpose": "marketing_email"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        (WITHDRAW, "gc-0", marketing),
        (WITHDRAW, "gc-1", {**marketing, "idempotencyKey": "w-1"}),
        (WITHDRAW, "gc-1", {**marketing, "idempotencyKey": "w-1"}),  # the app's retry: recorded once
        (WITHDRAW, "gc-2", {"purpose": "nope"}),  # refused: nothing of it recorded
        (WITHDRAW, "gc-3", {}),  # everything: the grant withdrawn, the opt-out purpose objected to
        (SET_CONSENTS, "gc-4", call("gc-4", choice(granted=False))[1]),  # a setConsents call among them
        (WITHDRAW, "gc-5", {**marketing, "channel": "SMS"}),  # one channel of the purpose
        (WITHDRAW, "gc-6", marketing),
        (WITHDRAW, "gc-6", {"purpose": "analytics"}),  # a second call for one subject in the same batch
        (WITHDRAW, "gc-new", {}),  # a subject not created yet: the opt-out purpose objected to
    ]
    answers = await asyncio.gather(
        *(gql(query, {"input": values}, token=subject_token(subject)) for query, subject, values in calls)
    )
    results = [next(iter(a.values())) for a in answers]
    kinds = [r["__typename"] for r in results]
    assert kinds[3] == "ValidationError"
    assert kinds.count("ValidationError") == 1
    assert sorted(r["replayed"] for r in results[1:3]) == [False, True]
    assert results[1]["events"] == results[2]["events"]
    assert {(e["purpose"], e["action"]) for e in results[4]["events"]} == {
        ("marketing_email", "WITHDRAW"),
        ("analytics", "OBJECT"),
    }
    assert [(e["channel"], e["action"]) for e in results[6]["events"]] == [("SMS", "WITHDRAW")]

    expected = {  # each subject's marketing_email and analytics events, newest first
        "gc-0": (["WITHDRAW", "GRANT"], []),
        "gc-1": (["WITHDRAW", "GRANT"], []),
        "gc-2": (["GRANT"], []),
        "gc-3": (["WITHDRAW", "GRANT"], ["OBJECT"]),
        "gc-4": (["WITHDRAW", "GRANT"], []),
        "gc-5": (["WITHDRAW", "GRANT"], []),  # the SMS withdrawal, then the purpose-wide grant
        "gc-6": (["WITHDRAW", "GRANT"], ["OBJECT"]),
        "gc-new": ([], ["OBJECT"]),
    }
    for subject, (marketing_actions, analytics_actions) in expected.items():
        history = await gql(EVENTS, {"subjectId": subject, "first": 50}, token=agent_token())
        nodes = [e["node"] for e in history["consentEvents"]["edges"]]
        assert [n["action"] for n in nodes if n["purpose"] == "marketing_email"] == marketing_actions
        assert [n["action"] for n in nodes if n["purpose"] == "analytics"] == analytics_actions
        [decision] = await check(gql, [subject], READER)  # the projection agrees with the last event
        assert decision["allowed"] is (subject in ("gc-2", "gc-5")), (subject, decision)
        [analytics] = await check(gql, [subject], READER, purpose="analytics")
        assert analytics["allowed"] is not analytics_actions, (subject, analytics)

    # The seeds, then gc-0, gc-1 once, gc-3 (two), gc-4, gc-5, gc-6 (two), gc-new.
    recorded = len(SUBJECTS) + 1 + 1 + 2 + 1 + 1 + 2 + 1
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified == {"ok": True, "eventsChecked": recorded}
    if database_url.startswith("postgresql"):
        # Written together: some transaction wrote the withdrawals of more than one subject.
        assert await _most_subjects_in_one_transaction(database_url, ("WITHDRAW", "OBJECT")) > 1


async def test_a_call_for_a_subject_another_writer_holds_waits_without_holding_up_the_others(
    gql: GraphQLClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers with the database lock; PostgreSQL locks subject rows")
    await seed_catalogue(gql)
    for subject in ("held", "free"):
        await set_consents(gql, choice(), token=subject_token(subject))
    engine = make_engine(database_url)
    try:
        async with engine.connect() as other:  # another writer (an import, a slow transaction) holds `held`
            await other.execute(text("SELECT id FROM subject WHERE external_id = 'held' FOR UPDATE"))
            waiting = asyncio.create_task(
                set_consents(gql, choice(granted=False), token=subject_token("held"))
            )
            await asyncio.sleep(0.2)
            freed = await asyncio.wait_for(
                set_consents(gql, choice(granted=False), token=subject_token("free")), 10
            )
            assert freed["__typename"] == "SetConsentsSuccess"
            assert not waiting.done()  # still waiting for the lock, on its own
            await other.rollback()
        assert (await asyncio.wait_for(waiting, 10))["__typename"] == "SetConsentsSuccess"
    finally:
        await engine.dispose()
    decisions = await check(gql, ["held", "free"], READER)
    assert [d["reason"] for d in decisions] == ["WITHDRAWN", "WITHDRAWN"]


class LostAfterCommit:
    """The real unit of work, whose COMMIT reaches the database but whose answer is lost (the connection
    drops): the batch IS recorded, and the callers only see an error."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    async def __aenter__(self) -> SqlUnitOfWork:
        uow = await self._uow.__aenter__()
        commit = uow.commit

        async def lost() -> None:
            await commit()
            raise ConnectionError("the connection closed before COMMIT's answer")

        uow.commit = lost  # type: ignore[method-assign]
        return uow

    async def __aexit__(self, *exc: Any) -> None:
        await self._uow.__aexit__(*exc)


async def test_a_batch_whose_commit_answer_is_lost_is_not_recorded_twice(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    subjects = [f"lost-{i}" for i in range(4)]
    for subject in subjects:
        await set_consents(gql, choice(), token=subject_token(subject))
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    service = ConsentService(
        lambda: SqlUnitOfWork(factory),
        lambda: datetime.now(UTC),
        SqlConsentReader(engine),
        batch_uow=lambda: LostAfterCommit(SqlUnitOfWork(factory)),  # type: ignore[arg-type,return-value]
    )
    try:
        calls = [
            service.set_consents(
                Principal(PrincipalKind.SUBJECT, id=s),
                SetConsentsRequest(s, [ConsentChoice("marketing_email", False)], notice_version=1),
            )
            for s in subjects
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await engine.dispose()
    assert all(isinstance(r, ConnectionError) for r in results), results
    for subject in subjects:  # recorded once each: the grant, then the one withdrawal
        history = await gql(EVENTS, {"subjectId": subject}, token=agent_token())
        assert [e["node"]["action"] for e in history["consentEvents"]["edges"]] == ["WITHDRAW", "GRANT"]


def service_for(engine: Any) -> ConsentService:
    factory = make_session_factory(engine)
    return ConsentService(
        lambda: SqlUnitOfWork(factory),
        lambda: datetime.now(UTC),
        SqlConsentReader(engine),
        batch_uow=lambda: SqlUnitOfWork(factory),
    )


def withdrawal(subject: str, granted: bool = False) -> tuple[Principal, SetConsentsRequest]:
    request = SetConsentsRequest(subject, [ConsentChoice("marketing_email", granted)], notice_version=1)
    return Principal(PrincipalKind.SUBJECT, id=subject), request


async def test_each_call_of_a_batch_gets_its_own_receipt_even_two_for_one_subject(
    gql: GraphQLClient, database_url: str
) -> None:
    # The follower makes one receipt per (subject, transaction, time): a second call for a subject already
    # in the batch is written on its own, so it gets its own.
    await seed_catalogue(gql)
    for subject in ("r-1", "r-2"):
        await set_consents(gql, choice(), token=subject_token(subject))
    await follow_up(database_url)  # the seeds' receipts
    engine = make_engine(database_url)
    try:
        service = service_for(engine)
        calls = [withdrawal("r-1"), withdrawal("r-1", granted=True), withdrawal("r-2")]
        changes = await asyncio.gather(*(service.set_consents(p, r) for p, r in calls))
    finally:
        await engine.dispose()
    assert [[e.action.value for e in c.events] for c in changes] == [["WITHDRAW"], ["GRANT"], ["WITHDRAW"]]
    run = await follow_up(database_url)
    assert run.receipts == 3
    history = await gql(EVENTS, {"subjectId": "r-1"}, token=agent_token())
    assert [e["node"]["action"] for e in history["consentEvents"]["edges"]] == ["GRANT", "WITHDRAW", "GRANT"]


async def test_a_batch_skips_a_held_subject_and_writes_the_others(
    gql: GraphQLClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers with the database lock; PostgreSQL locks subject rows")
    await seed_catalogue(gql)
    for subject in ("h", "f-1", "f-2"):
        await set_consents(gql, choice(), token=subject_token(subject))
    engine = make_engine(database_url)
    try:
        service = service_for(engine)
        async with engine.connect() as other:
            await other.execute(text("SELECT id FROM subject WHERE external_id = 'h' FOR UPDATE"))
            calls = [withdrawal(s) for s in ("h", "f-1", "f-2")]  # one batch of three
            tasks = [asyncio.create_task(service.set_consents(p, r)) for p, r in calls]
            done = await asyncio.wait_for(asyncio.gather(tasks[1], tasks[2]), 10)
            assert [[e.action.value for e in c.events] for c in done] == [["WITHDRAW"], ["WITHDRAW"]]
            assert not tasks[0].done()  # waiting for `h` on its own
            await other.rollback()
        assert [e.action.value for e in (await asyncio.wait_for(tasks[0], 10)).events] == ["WITHDRAW"]
        await service.aclose()
    finally:
        await engine.dispose()


async def test_the_keyed_calls_of_a_batch_read_their_earlier_events_in_one_statement(
    gql: GraphQLClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_catalogue(gql)
    subjects = [f"key-{i}" for i in range(5)]
    for subject in subjects:
        await set_consents(gql, choice(), token=subject_token(subject))
    looked_up: list[list[tuple[int, str]]] = []
    by_pairs = SqlConsentLedger.events_for_keys

    async def counted(self: SqlConsentLedger, pairs: Any) -> Any:
        looked_up.append(sorted(pairs, key=lambda p: p[1]))
        return await by_pairs(self, pairs)

    async def one_by_one(*_: Any) -> Any:
        raise AssertionError("a batch reads its keys together")

    monkeypatch.setattr(SqlConsentLedger, "events_for_keys", counted)
    monkeypatch.setattr(SqlConsentLedger, "events_for_key", one_by_one)

    def keyed(subject: str, granted: bool, key: str | None) -> SetCall:
        request = SetConsentsRequest(subject, [ConsentChoice("marketing_email", granted)], notice_version=1)
        return SetCall(request, subject, Actor(ActorKind.SUBJECT, subject), ConsentMethod.CHECKBOX, key)

    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    clock = lambda: datetime.now(UTC)  # noqa: E731
    batch = BatchWriter(lambda: SqlUnitOfWork(factory), clock, ConsentEffects(clock, None), write_one=None)  # type: ignore[arg-type]
    try:
        first = await batch([keyed(s, False, f"a-{i}") for i, s in enumerate(subjects[:4])])
        again = await batch(
            [
                keyed("key-0", False, "a-0"),  # the app's retry: a replay
                keyed("key-1", False, "a-1"),  # another
                keyed("key-2", True, "a-2"),  # the key again for other choices: refused
                keyed("key-3", True, "b-3"),  # a new key: recorded
                keyed("key-4", True, None),  # no key: recorded
            ]
        )
    finally:
        await engine.dispose()
    assert [type(o).__name__ for o in first] == ["ConsentChange"] * 4
    assert [getattr(o, "replayed", None) for o in again] == [True, True, None, False, False]
    assert isinstance(again[2], ValidationFailed)
    assert again[0].events == first[0].events
    assert [[key for _, key in pairs] for pairs in looked_up] == [
        ["a-0", "a-1", "a-2", "a-3"],
        ["a-0", "a-1", "a-2", "b-3"],
    ]
    actions = {}
    for subject in subjects:
        history = await gql(EVENTS, {"subjectId": subject}, token=agent_token())
        actions[subject] = [e["node"]["action"] for e in history["consentEvents"]["edges"]]
    assert actions == {
        "key-0": ["WITHDRAW", "GRANT"],
        "key-1": ["WITHDRAW", "GRANT"],
        "key-2": ["WITHDRAW", "GRANT"],
        "key-3": ["GRANT", "WITHDRAW", "GRANT"],
        "key-4": ["GRANT", "GRANT"],
    }


async def test_two_batches_are_written_at_once_on_postgresql_one_on_sqlite(
    gql: GraphQLClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_catalogue(gql)
    writing, most, started = [0], [0], asyncio.Event()
    original = BatchWriter.__call__

    async def slow(self: BatchWriter, calls: Any) -> list[Any]:
        writing[0] += 1
        most[0] = max(most[0], writing[0])
        started.set()
        try:
            await asyncio.sleep(0.05)  # a slow batch: the calls arriving meanwhile wait, or make another
            return await original(self, calls)
        finally:
            writing[0] -= 1

    monkeypatch.setattr(BatchWriter, "__call__", slow)
    first = asyncio.gather(*(set_consents(gql, token=subject_token(f"w-{i}")) for i in range(10)))
    await asyncio.wait_for(started.wait(), 30)
    later = asyncio.gather(*(set_consents(gql, token=subject_token(f"w-{i}")) for i in range(10, 20)))
    results = await asyncio.wait_for(asyncio.gather(first, later), 30)
    assert {r["__typename"] for group in results for r in group} == {"SetConsentsSuccess"}
    assert most[0] == (2 if database_url.startswith("postgresql") else 1)
