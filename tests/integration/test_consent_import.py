"""import-consents: valid rows in one transaction, rejected rows reported by line, dry run, strict."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dsr_gateway.cli_consent import import_consents
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.services.consent_import import ConsentImportService, ImportAborted
from tests.support.app import GraphQLClient, client_token
from tests.support.consent_factories import EVENTS, check, seed_catalogue

HEADER = "subject_id,purpose,action,occurred_at,topic,channel,notice_version,source\n"
# Recent enough for marketing_email's 365-day reconfirmation period, whenever the tests run.
RECENT = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
OLDER = (RECENT - timedelta(days=100)).astimezone(UTC).isoformat().replace("+00:00", "+01:00")
GOOD = [
    f"a,marketing_email,GRANT,{RECENT.isoformat()},,,1,old-crm",
    f"a,marketing_email,WITHDRAW,{OLDER},,,,old-crm",  # older: history only
    f"b,marketing_email,grant,{RECENT.isoformat().replace('+00:00', 'Z')},promotions,EMAIL,,",
    f"c,analytics,OBJECT,{RECENT.isoformat()},,,,",
]
BAD = [
    ("d,nope,GRANT,2025-01-01T10:00:00Z,,,,", "no purpose 'nope'"),
    ("d,marketing_email,GRANT,yesterday,,,,", "not an ISO 8601 date-time"),
    ("d,marketing_email,GRANT,2025-01-01T10:00:00,,,,", "needs a UTC offset"),
    ("d,marketing_email,GRANT,2999-01-01T10:00:00Z,,,,", "in the future"),
    ("d,essential,GRANT,2025-01-01T10:00:00Z,,,,", "NOTICE_ONLY"),
    ("d,marketing_email,GRANT,2025-01-01T10:00:00Z,nope,,,", "has no topic 'nope'"),
    ("d,marketing_email,MAYBE,2025-01-01T10:00:00Z,,,,", "action 'MAYBE' is not one of"),
    ("d,marketing_email,GRANT,2025-01-01T10:00:00Z,,,9,", "no privacy notice version 9"),
    ("d,marketing_email,GRANT,2025-01-01T10:00:00Z,,,,,extra", "more cells than the header"),
    (",marketing_email,GRANT,2025-01-01T10:00:00Z,,,,", "subject_id must be"),
]
READER = client_token("consent:read")


@pytest.fixture
async def catalogue(gql: GraphQLClient) -> GraphQLClient:
    await seed_catalogue(gql)
    return gql


def write(tmp_path: Path, lines: list[str], header: str = HEADER) -> str:
    path = tmp_path / "consents.csv"
    path.write_text(header + "\n".join(lines) + "\n")
    return str(path)


async def events(gql: GraphQLClient) -> list[dict[str, Any]]:
    # The history (newest first), not the changes feed: the feed may hold events back while any other
    # writer on the database server is open, which a shared test server cannot rule out.
    data = await gql(EVENTS, {"first": 100}, token=READER)
    return [e["node"] for e in reversed(data["consentEvents"]["edges"])]


async def test_valid_rows_are_imported_and_rejected_rows_reported_by_line(
    catalogue: GraphQLClient, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gql = catalogue
    lines = GOOD + [line for line, _ in BAD]
    status = await import_consents(database_url, write(tmp_path, lines), dry_run=False, strict=False)
    assert status == 3
    out, err = capsys.readouterr()
    assert f"4 of {len(lines)} rows imported for 3 subjects" in out
    for offset, (_, reason) in enumerate(BAD):
        line = 2 + len(GOOD) + offset  # the header is line 1
        assert f"line {line}: " in err
        assert reason in err.split(f"line {line}: ")[1].splitlines()[0]

    recorded = await events(gql)
    assert len(recorded) == 4
    assert {e["method"] for e in recorded} == {"IMPORT"}
    assert {e["actor"]["kind"] for e in recorded} == {"SYSTEM"}
    assert recorded[0]["origin"]["appId"] == "old-crm"
    decisions = await check(gql, ["a", "b", "c"], READER)
    # a: the later grant stands (the older withdrawal is history); b: only a topic on EMAIL.
    assert [d["reason"] for d in decisions] == ["GRANTED", "NOT_GIVEN", "NOT_GIVEN"]
    topic = await check(gql, ["b"], READER, topic="promotions", channel="EMAIL")
    assert topic[0]["reason"] == "GRANTED"
    analytics = await check(gql, ["c"], READER, purpose="analytics")
    assert analytics[0]["reason"] == "WITHDRAWN"


async def test_dry_run_records_nothing(
    catalogue: GraphQLClient, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await import_consents(database_url, write(tmp_path, GOOD), dry_run=True, strict=False)
    assert status == 0
    assert "4 of 4 rows would be imported" in capsys.readouterr().out
    assert await events(catalogue) == []


async def test_strict_imports_nothing_when_a_row_is_rejected(
    catalogue: GraphQLClient, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await import_consents(
        database_url, write(tmp_path, [*GOOD, BAD[0][0]]), dry_run=False, strict=True
    )
    assert status == 1
    assert "line 6: no purpose 'nope'; nothing was imported" in capsys.readouterr().err
    assert await events(catalogue) == []


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("subject_id,purpose,action\n", "missing column(s): occurred_at"),
        ("subject_id,purpose,action,occurred_at,colour\n", "unknown column(s): colour"),
        ("", "the file is empty"),
    ],
)
async def test_unusable_header(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, words: str
) -> None:
    path = write(tmp_path, [], header=header) if header else str(tmp_path / "empty.csv")
    if not header:
        Path(path).write_text("")  # noqa: ASYNC240
    assert await import_consents(database_url, path, dry_run=False, strict=False) == 2
    assert words in capsys.readouterr().err


class FailingSecondChunk:
    """The real unit of work, with a fault injected after the first chunk has been written."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    async def __aenter__(self) -> SqlUnitOfWork:
        uow = await self._uow.__aenter__()
        record = uow.consent_import.record
        calls = [0]

        async def failing(*args: Any) -> Any:
            calls[0] += 1
            if calls[0] == 2:
                raise ConnectionError("the database went away")
            return await record(*args)

        uow.consent_import.record = failing  # type: ignore[method-assign]
        return uow

    async def __aexit__(self, *exc: object) -> None:
        await self._uow.__aexit__(*exc)  # type: ignore[arg-type]


async def test_a_fatal_error_leaves_nothing_half_imported(
    catalogue: GraphQLClient, database_url: str
) -> None:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    make: Callable[[], Any] = lambda: FailingSecondChunk(SqlUnitOfWork(factory))  # noqa: E731
    service = ConsentImportService(make, lambda: datetime.now(UTC))
    rows = [
        (i + 2, dict(zip(HEADER.strip().split(","), GOOD[i % 4].split(","), strict=True))) for i in range(8)
    ]
    progress: list[tuple[int, int]] = []
    try:
        with pytest.raises(ConnectionError):
            await service.run(rows, chunk_rows=3, progress=lambda r, i: progress.append((r, i)))
    finally:
        await engine.dispose()
    assert progress == [(3, 3)]  # the first chunk was written, then rolled back with the rest
    assert await events(catalogue) == []


def test_the_command_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    from dsr_gateway.cli import main

    with pytest.raises(SystemExit) as done:
        main(["import-consents", "--help"])
    assert done.value.code == 0
    assert "--dry-run" in capsys.readouterr().out


async def test_strict_rejection_while_a_chunk_is_being_written_leaves_nothing(
    catalogue: GraphQLClient, database_url: str
) -> None:
    # Chunks of 2: the bad row is checked while the chunk before it is being written.
    engine = make_engine(database_url)
    service = ConsentImportService(
        lambda: SqlUnitOfWork(make_session_factory(engine)), lambda: datetime.now(UTC)
    )
    names = HEADER.strip().split(",")
    lines = [*GOOD, BAD[0][0]]
    rows = [(i + 2, dict(zip(names, line.split(","), strict=True))) for i, line in enumerate(lines)]
    try:
        with pytest.raises(ImportAborted, match="line 6: no purpose 'nope'"):
            await service.run(rows, strict=True, chunk_rows=2)
    finally:
        await engine.dispose()
    assert await events(catalogue) == []
