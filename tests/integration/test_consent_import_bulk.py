"""import-consents in chunks large enough for the bulk path (COPY and a temporary table on PostgreSQL):
chains continue from a live write's head, the projection equals the last choice, the audit verifies, and
a failure in a later chunk leaves nothing half-imported."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.repositories.consent_bulk import BULK_MIN_ROWS
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    NewConsentEvent,
    Origin,
    Scope,
    apply,
)
from dsr_gateway.domain.consent_import import IMPORT_ACTOR, ImportRow, RowParser
from dsr_gateway.services.consent_import import ConsentImportService
from tests.support.app import GraphQLClient, agent_token, client_token, subject_token
from tests.support.consent_factories import check, choice, seed_catalogue, set_consents

COLUMNS = ("subject_id", "purpose", "action", "occurred_at", "topic", "channel", "notice_version", "source")
VERIFY = "{ auditVerification { ok eventsChecked brokenChains firstBreak { chain problem } } }"
COUNT = '{ consentEvents(since: "", first: 1) { edges { node { id } } } }'
READER = client_token("consent:read")
HISTORY = "query($subjectId: String) { consentEvents(subjectId: $subjectId) { edges { node { action } } } }"
SET_INPUT = {
    "choices": [{"purpose": "marketing_email", "granted": True}],
    "noticeVersion": 1,
    "method": "AGENT",
}
# Two chunks, each with more rows, subjects and changed states than the bulk threshold.
SUBJECTS = 2 * BULK_MIN_ROWS + 50
PER_SUBJECT = 3
START = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)


def rows() -> list[tuple[int, dict[str, str | None]]]:
    """Per subject alternating GRANT/WITHDRAW of marketing_email in time order, interleaved."""
    out: list[tuple[int, dict[str, str | None]]] = []
    for step in range(PER_SUBJECT):
        for subject in range(SUBJECTS):
            action = "GRANT" if step % 2 == 0 else "WITHDRAW"
            when = (START + timedelta(minutes=step)).isoformat()
            values = (f"bulk-{subject}", "marketing_email", action, when, "", "", "1", "old-crm")
            out.append((len(out) + 2, dict(zip(COLUMNS, values, strict=True))))
    return out


def service(database_url: str, make: Callable[[Any], Any] = lambda uow: uow) -> tuple[Any, Any]:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    return engine, ConsentImportService(lambda: make(SqlUnitOfWork(factory)), lambda: datetime.now(UTC))


async def test_a_bulk_import_continues_chains_and_sets_the_projection(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    # A live event first: the import continues bulk-0's chain from its head.
    await set_consents(gql, choice(), token=subject_token("bulk-0"))
    engine, importer = service(database_url)
    try:
        report = await importer.run(rows(), chunk_rows=len(rows()) // 2 + 1)
    finally:
        await engine.dispose()
    assert report.imported == SUBJECTS * PER_SUBJECT
    assert report.rejected == []

    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified
    assert verified["eventsChecked"] == SUBJECTS * PER_SUBJECT + 1
    last_granted = (PER_SUBJECT - 1) % 2 == 0
    ids = [f"bulk-{i}" for i in range(1, SUBJECTS)]  # bulk-0's live grant is newer than its history
    decisions = await check(gql, ids, READER)
    assert {d["allowed"] for d in decisions} == {last_granted}
    assert (await check(gql, ["bulk-0"], READER))[0]["allowed"] is True


class FailOnSecondChunk:
    def __init__(self, uow: Any) -> None:
        self._uow = uow

    async def __aenter__(self) -> Any:
        uow = await self._uow.__aenter__()
        record, calls = uow.consent_import.record, [0]

        async def failing(*args: Any) -> Any:
            calls[0] += 1
            if calls[0] == 2:
                raise ConnectionError("the database went away")
            return await record(*args)

        uow.consent_import.record = failing
        return uow

    async def __aexit__(self, *exc: object) -> None:
        await self._uow.__aexit__(*exc)


async def test_a_failure_in_a_later_bulk_chunk_leaves_nothing(gql: GraphQLClient, database_url: str) -> None:
    await seed_catalogue(gql)
    engine, importer = service(database_url, FailOnSecondChunk)
    try:
        with pytest.raises(ConnectionError):
            await importer.run(rows(), chunk_rows=len(rows()) // 2 + 1)
    finally:
        await engine.dispose()
    assert (await gql(COUNT, token=READER))["consentEvents"]["edges"] == []
    assert {d["reason"] for d in await check(gql, ["bulk-1", "bulk-2"], READER)} == {"NOT_GIVEN"}


async def test_rows_unlike_the_first_are_sealed_the_general_way(
    gql: GraphQLClient, database_url: str
) -> None:
    # The chunk writer takes its template from the first row; rows recorded at another time (or by
    # another actor) differ in a constant column and are hashed column by column: all must verify.
    await seed_catalogue(gql)
    now = datetime.now(UTC)
    rows = []
    for index in range(2 * BULK_MIN_ROWS):
        event = NewConsentEvent(
            scope=Scope("analytics"),
            action=ConsentAction.GRANT if index % 2 else ConsentAction.OBJECT,
            method=ConsentMethod.IMPORT,
            notice_version=None,
            origin=Origin(app_id="crm"),
            actor=IMPORT_ACTOR if index % 3 else Actor(ActorKind.SYSTEM, "other-import"),
            occurred_at=START + timedelta(seconds=index),
            recorded_at=now if index % 5 else now - timedelta(seconds=1),
        )
        rows.append(ImportRow(index + 2, f"mixed-{index % 50}", event))
    engine = make_engine(database_url)
    try:
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            await uow.consent_import.record(rows, now)
            await uow.commit()
    finally:
        await engine.dispose()
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified
    assert verified["eventsChecked"] == len(rows)
    # The last event of each subject (index 350..399: GRANT when odd) decides the projection.
    decisions = await check(gql, ["mixed-1", "mixed-2"], READER, purpose="analytics")
    assert [d["allowed"] for d in decisions] == [True, False]


async def test_a_small_chunk_then_a_bulk_chunk_leaves_the_newest_choice_in_force(
    gql: GraphQLClient, database_url: str
) -> None:
    # Chunk 1 keeps one valid row (a GRANT; the rest are rejected): the small path queues its projection
    # upsert. Chunk 2 is large (the COPY path) and withdraws that grant later. The projection must end
    # on the withdrawal (found by review: the queued upsert used to overwrite the COPY's newer row).
    await seed_catalogue(gql)
    size = BULK_MIN_ROWS + 50

    def row(line: int, subject: str, purpose: str, action: str, minute: int) -> tuple[int, dict[str, Any]]:
        when = (START + timedelta(minutes=minute)).isoformat()
        values = (subject, purpose, action, when, "", "", "1", "old-crm")
        return line, dict(zip(COLUMNS, values, strict=True))

    first = [row(2, "imp-0", "marketing_email", "GRANT", 0)]
    first += [row(3 + i, "imp-x", "no_such_purpose", "GRANT", 0) for i in range(size - 1)]
    second = [row(2 + size, "imp-0", "marketing_email", "WITHDRAW", 5)]
    second += [row(3 + size + i, f"imp-{i + 1}", "marketing_email", "GRANT", 1) for i in range(size - 1)]
    engine, importer = service(database_url)
    try:
        report = await importer.run(first + second, chunk_rows=size)
    finally:
        await engine.dispose()
    assert report.imported == size + 1
    [decision] = await check(gql, ["imp-0"], client_token("consent:read"))
    assert (decision["allowed"], decision["reason"]) == (False, "WITHDRAWN")


@pytest.mark.parametrize("chunk_rows", [len(rows()), BULK_MIN_ROWS // 2], ids=["bulk", "small-chunks"])
async def test_an_import_waits_for_a_live_write_of_a_subject_and_continues_its_chain_after_it(
    gql: GraphQLClient, database_url: str, chunk_rows: int
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises the import and the write (the database lock)")
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("bulk-0"))  # an existing chain the import extends
    engine, importer = service(database_url)
    factory = make_session_factory(engine)
    try:
        # A live write holds bulk-0 (locked, head read, its event appended, not committed yet) ...
        async with SqlUnitOfWork(factory) as writer:
            now = datetime.now(UTC)
            subject = await writer.consents.lock_subject("bulk-0", now)
            [current] = (await writer.consents.states([subject]))[subject]
            event = NewConsentEvent(
                Scope("marketing_email"),
                ConsentAction.WITHDRAW,
                ConsentMethod.AGENT,
                1,
                Origin(),
                Actor(ActorKind.AGENT, "agent-1"),
                now,
                now,
            )
            [recorded] = await writer.consents.append([(subject, event)])
            await writer.consents.save_states([(subject, apply(current, recorded))])
            # ... so the import waits at bulk-0's lock (it would otherwise read the committed head and
            # write the same chain position, failing the whole file) ...
            importing = asyncio.create_task(importer.run(rows(), chunk_rows=chunk_rows))
            await asyncio.sleep(0.5)
            assert not importing.done()
            await writer.commit()
        # ... and reads the new head once the write commits.
        report = await asyncio.wait_for(importing, 30)
    finally:
        await engine.dispose()
    assert report.imported == len(rows())
    assert not report.rejected
    # The import's older history follows the live write in the chain without overriding its newer choice.
    history = await gql(HISTORY, {"subjectId": "bulk-0"}, token=READER)
    actions = [e["node"]["action"] for e in history["consentEvents"]["edges"]]
    assert actions == ["GRANT", "WITHDRAW", "GRANT", "WITHDRAW", "GRANT"]
    decided = await check(gql, ["bulk-0", "bulk-1"], READER)
    assert [d["allowed"] for d in decided] == [False, True]
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified


async def test_imports_run_one_at_a_time(gql: GraphQLClient, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers with the database lock")
    await seed_catalogue(gql)
    engine, importer = service(database_url)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    event = NewConsentEvent(
        Scope("marketing_email"), ConsentAction.GRANT, ConsentMethod.IMPORT, 1, Origin(), IMPORT_ACTOR,
        now - timedelta(days=1), now,
    )  # fmt: skip
    try:
        async with SqlUnitOfWork(factory) as first:
            await first.consent_import.record([ImportRow(2, "elsewhere", event)], now)  # an import under way
            # Two imports lock their subjects chunk by chunk: at once, overlapping ones could deadlock.
            second = asyncio.create_task(importer.run(rows(), chunk_rows=BULK_MIN_ROWS))
            await asyncio.sleep(0.5)
            assert not second.done()
            await first.commit()
        report = await asyncio.wait_for(second, 30)
    finally:
        await engine.dispose()
    assert report.imported == len(rows())
    for subject, events in (("elsewhere", 1), ("bulk-0", PER_SUBJECT)):
        history = await gql(HISTORY, {"subjectId": subject}, token=READER)
        assert len(history["consentEvents"]["edges"]) == events
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified


@pytest.mark.parametrize("rows_in_chunk", [1, BULK_MIN_ROWS], ids=["small-chunk", "bulk"])
async def test_an_import_holds_off_writers_of_its_subjects_but_not_rows_that_name_them(
    gql: GraphQLClient, database_url: str, rows_in_chunk: int
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite locks the database, not rows")
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("held-0"))
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    event = NewConsentEvent(
        Scope("marketing_email"), ConsentAction.WITHDRAW, ConsentMethod.IMPORT, 1, Origin(), IMPORT_ACTOR,
        now - timedelta(days=1), now,
    )  # fmt: skip
    chunk = [ImportRow(2 + i, "held-0" if i == 0 else f"held-new-{i}", event) for i in range(rows_in_chunk)]
    try:
        async with SqlUnitOfWork(factory) as importing:
            await importing.consent_import.record(chunk, now)
            async with engine.connect() as other:
                await other.execute(text("SET lock_timeout = '2s'"))
                subject = "(SELECT id FROM subject WHERE external_id = 'held-0')"
                # A foreign-key check of a row naming the subject (a receipt, a request) does not wait ...
                await other.execute(text(f"SELECT 1 FROM subject WHERE id = {subject} FOR KEY SHARE"))
                await other.rollback()
                # ... a writer of the subject does.
                with pytest.raises(Exception, match="could not obtain lock"):
                    await other.execute(text(f"SELECT 1 FROM subject WHERE id = {subject} FOR UPDATE NOWAIT"))
                await other.rollback()
            await importing.commit()
    finally:
        await engine.dispose()


async def test_a_live_write_waits_for_an_import_that_extends_the_same_chain_and_continues_it(
    gql: GraphQLClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises the import and the write (the database lock)")
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("race-0"))
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    try:
        # An import's chunk extends race-0's chain without the subject's lock; its event's foreign key
        # holds the subject row (FOR KEY SHARE) until the import commits ...
        async with SqlUnitOfWork(factory) as importing:
            now = datetime.now(UTC)
            event = NewConsentEvent(
                Scope("marketing_email"),
                ConsentAction.WITHDRAW,
                ConsentMethod.IMPORT,
                1,
                Origin(),
                IMPORT_ACTOR,
                now - timedelta(days=1),
                now,
            )
            await importing.consent_import.record([ImportRow(2, "race-0", event)], now)
            # ... so a live write of race-0 waits for it at the subject's lock, then reads the new head.
            live = asyncio.create_task(
                set_consents(gql, choice(granted=False), token=subject_token("race-0"), method="BUTTON")
            )
            await asyncio.sleep(0.5)
            assert not live.done()
            await importing.commit()
        result = await asyncio.wait_for(live, 30)
    finally:
        await engine.dispose()
    assert result["__typename"] == "SetConsentsSuccess", result
    history = await gql(HISTORY, {"subjectId": "race-0"}, token=READER)
    assert [e["node"]["action"] for e in history["consentEvents"]["edges"]] == [
        "WITHDRAW",
        "WITHDRAW",
        "GRANT",
    ]
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified


def chunk_row(line: int, subject: str, purpose: str, action: str, minute: int) -> tuple[int, dict[str, Any]]:
    when = (START + timedelta(minutes=minute)).isoformat()
    values = (subject, purpose, action, when, "", "", "1", "old-crm")
    return line, dict(zip(COLUMNS, values, strict=True))


def pipelined_rows(size: int) -> list[tuple[int, dict[str, Any]]]:
    """Three bulk chunks of `size` rows. span-a is in every chunk (chunk K+1 continues it from chunk K
    before K is written); gap-b is in chunks 1 and 3 (chunk 3 reads it back from the database); live-c
    extends a chain recorded before the import, in chunks 2 and 3; span-a's analytics scope is new in
    chunk 2 and changed in chunk 3 (its projection row is inserted, then upserted)."""
    chunks = [
        [("span-a", "marketing_email", "GRANT", 0), ("gap-b", "marketing_email", "GRANT", 0)],
        [
            ("span-a", "marketing_email", "WITHDRAW", 1),
            ("span-a", "analytics", "GRANT", 1),
            ("live-c", "marketing_email", "WITHDRAW", 1),
        ],
        [
            ("span-a", "marketing_email", "GRANT", 2),
            ("span-a", "analytics", "WITHDRAW", 2),
            ("gap-b", "marketing_email", "WITHDRAW", 2),
            ("live-c", "marketing_email", "GRANT", 2),
        ],
    ]
    out: list[tuple[int, dict[str, Any]]] = []
    for number, named in enumerate(chunks, 1):
        fillers = [(f"fill-{number}-{i}", "marketing_email", "GRANT", 0) for i in range(size - len(named))]
        out += [chunk_row(len(out) + 2, *values) for values in named + fillers]
    return out


async def test_chunks_written_behind_the_next_continue_each_subjects_chain_and_projection(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("live-c"))
    size = BULK_MIN_ROWS + 10
    engine, importer = service(database_url)
    try:
        report = await importer.run(pipelined_rows(size), chunk_rows=size)
    finally:
        await engine.dispose()
    assert (report.imported, report.rejected) == (3 * size, [])

    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified
    assert verified["eventsChecked"] == 3 * size + 1
    decisions = await check(gql, ["span-a", "gap-b", "fill-3-0"], READER)
    assert [(d["allowed"], d["reason"]) for d in decisions] == [
        (True, "GRANTED"),
        (False, "WITHDRAWN"),
        (True, "GRANTED"),
    ]
    [analytics] = await check(gql, ["span-a"], READER, purpose="analytics")
    assert analytics["reason"] == "WITHDRAWN"
    history = await gql(HISTORY, {"subjectId": "span-a"}, token=READER)
    assert [e["node"]["action"] for e in history["consentEvents"]["edges"]] == [
        "WITHDRAW",
        "GRANT",
        "GRANT",
        "WITHDRAW",
        "GRANT",
    ]
    # live-c: the agent's grant (now), then the imported history (older) continuing its chain.
    history = await gql(HISTORY, {"subjectId": "live-c"}, token=READER)
    assert len(history["consentEvents"]["edges"]) == 3


class FailingFirstWrite:
    """The first chunk's write fails while the next chunk is being sealed (the write runs behind)."""

    def __init__(self, uow: Any) -> None:
        self._uow = uow

    async def __aenter__(self) -> Any:
        uow = await self._uow.__aenter__()
        importer = uow.consent_import

        async def failing(*args: Any) -> None:
            await asyncio.sleep(0)
            raise ConnectionError("the database went away")

        importer._write = failing
        return uow

    async def __aexit__(self, *exc: object) -> None:
        await self._uow.__aexit__(*exc)


async def test_a_chunk_write_failing_behind_the_next_chunk_fails_the_import_and_leaves_nothing(
    gql: GraphQLClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("only the bulk path (PostgreSQL) writes a chunk behind the next")
    await seed_catalogue(gql)
    size = BULK_MIN_ROWS + 10
    engine, importer = service(database_url, FailingFirstWrite)
    try:
        with pytest.raises(ConnectionError):
            await importer.run(pipelined_rows(size), chunk_rows=size)
    finally:
        await engine.dispose()
    assert (await gql(COUNT, token=READER))["consentEvents"]["edges"] == []
    assert (await check(gql, ["span-a"], READER))[0]["reason"] == "NOT_GIVEN"


async def test_an_import_counts_what_it_added_per_table(gql: GraphQLClient, database_url: str) -> None:
    # What `outdated_statistics` decides from: rows added per ledger table, whichever path wrote them.
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("live-c"))
    size = BULK_MIN_ROWS + 10
    engine = make_engine(database_url)
    try:
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            notices = {1: await uow.consents.notice_purposes(1)}
            parse = RowParser(purposes, notices.get, datetime.now(UTC))
            rows = [parse(line, row) for line, row in pipelined_rows(size)]
            for start in range(0, len(rows), size):
                await uow.consent_import.record(rows[start : start + size], datetime.now(UTC))
            await uow.commit()
            growth = uow.consent_import.growth()
    finally:
        await engine.dispose()
    assert growth["consent_event"].added == 3 * size
    # Subjects: span-a, gap-b and the fillers (live-c existed). Projection rows: one per new scope (live-c's
    # was there already).
    assert growth["consent_state"].added == 2 + 3 * size - 9 + 1
    if database_url.startswith("postgresql"):
        assert growth["subject"].added == 2 + 3 * size - 9


async def test_one_unit_of_work_importing_across_two_commits_starts_each_transaction_afresh(
    gql: GraphQLClient, database_url: str
) -> None:
    # The transaction's id (the changes feed's order) and the temporary projection table (dropped at
    # commit) belong to one transaction: a second commit's chunks must not reuse them.
    await seed_catalogue(gql)
    size = BULK_MIN_ROWS + 10
    engine = make_engine(database_url)
    try:
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            parse = RowParser(purposes, {1: await uow.consents.notice_purposes(1)}.get, datetime.now(UTC))
            rows = [parse(line, row) for line, row in pipelined_rows(size)]
            for start in (0, size):  # the second chunk changes scopes the first stored: the upsert path
                await uow.consent_import.record(rows[start : start + size], datetime.now(UTC))
                await uow.commit()
        if database_url.startswith("postgresql"):
            async with engine.connect() as connection:
                orders = await connection.execute(text("SELECT DISTINCT tx_order FROM consent_event"))
                assert len(list(orders)) == 2
    finally:
        await engine.dispose()
    verified = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert verified["ok"], verified
    assert verified["eventsChecked"] == 2 * size
    [decision] = await check(gql, ["span-a"], READER)
    assert decision["reason"] == "WITHDRAWN"
