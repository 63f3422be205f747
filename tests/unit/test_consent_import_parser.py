"""RowParser (the importer's per-file parser) accepts and refuses exactly as parse_row, with the same
messages, also when a row repeats an earlier row's purpose, version or time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsr_gateway.domain.consent_import import ImportRow, RowParser, RowRejected, parse_row
from tests.unit.test_consent_rules import IN_NOTICE, PURPOSES

COLUMNS = ("subject_id", "purpose", "action", "occurred_at", "topic", "channel", "notice_version", "source")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = [
    "a,marketing_email,GRANT,2025-03-01T10:00:00Z,,,1,old-crm",
    "a,marketing_email,withdraw,2025-03-01T11:00:00+01:00,,,,",
    "b,marketing_email,GRANT,2025-03-01T10:00:00Z,promotions,email,1,",
    "c,analytics,OBJECT,2025-03-01T10:00:00Z,,,,",
    "d,nope,GRANT,2025-01-01T10:00:00Z,,,,",
    "d,marketing_email,GRANT,yesterday,,,,",
    "d,marketing_email,GRANT,2025-01-01T10:00:00,,,,",
    "d,marketing_email,GRANT,2999-01-01T10:00:00Z,,,,",
    "d,essential,GRANT,2025-01-01T10:00:00Z,,,,",
    "d,marketing_email,GRANT,2025-01-01T10:00:00Z,nope,,,",
    "d,marketing_email,MAYBE,2025-01-01T10:00:00Z,nope,,,",
    "d,marketing_email,GRANT,2025-01-01T10:00:00Z,,,9,",
    "d,marketing_email,GRANT,2025-01-01T10:00:00Z,,,x,",
    "d,marketing_email,GRANT,2025-01-01T10:00:00Z,,,2,",
    ",marketing_email,GRANT,2025-01-01T10:00:00Z,,,,",
    "d,marketing_email,GRANT,2025-01-01T10:00:00Z,,,," + "s" * 201,
]


def notices(version: int) -> set[str] | None:
    return {1: IN_NOTICE, 2: {"analytics"}}.get(version)


def outcome(parse: object, line: int, text: str) -> ImportRow | str:
    row = dict(zip(COLUMNS, text.split(","), strict=True))
    try:
        return parse(line, row)  # type: ignore[operator,no-any-return]
    except RowRejected as exc:
        return f"rejected: {exc}"


@pytest.mark.parametrize("text", ROWS)
def test_each_row_as_parse_row(text: str) -> None:
    parser = RowParser(PURPOSES, notices, NOW)
    expected = outcome(lambda n, r: parse_row(n, r, PURPOSES, notices, NOW), 7, text)
    assert outcome(parser, 7, text) == expected
    assert outcome(parser, 7, text) == expected  # again, from what the parser remembered


def test_a_whole_file_as_parse_row() -> None:
    parser = RowParser(PURPOSES, notices, NOW)
    for line, text in enumerate(ROWS * 2, start=2):
        assert outcome(parser, line, text) == outcome(
            lambda n, r: parse_row(n, r, PURPOSES, notices, NOW), line, text
        )


def test_extra_cells_are_refused() -> None:
    with pytest.raises(RowRejected, match="more cells"):
        RowParser(PURPOSES, notices, NOW)(2, {"subject_id": "a", None: "x"})  # type: ignore[dict-item]
