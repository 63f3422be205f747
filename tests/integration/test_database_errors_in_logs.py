"""A database error in a log line names the constraint, never the values: PostgreSQL's DETAIL repeats
the key (an external id, an email) or the whole failing row."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from dsr_gateway.db.engine import make_engine
from dsr_gateway.http.logging import JsonFormatter

SECRET = "alice.secret@example.com"


async def test_a_unique_and_a_not_null_violation_are_logged_without_their_values(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's errors carry no DETAIL with the values")
    engine = make_engine(database_url)
    lines = []
    insert = text("INSERT INTO leak VALUES (:email, :note)")
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("CREATE TEMPORARY TABLE leak (email text UNIQUE, note text NOT NULL)")
            )
            await connection.execute(insert, {"email": SECRET, "note": "x"})
            # DETAIL: Key (email)=(...) already exists; DETAIL: Failing row contains (...).
            for values in ({"email": SECRET, "note": "y"}, {"email": f"other-{SECRET}", "note": None}):
                try:
                    async with connection.begin_nested():
                        await connection.execute(insert, values)
                except IntegrityError:
                    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
                    lines.append(json.loads(JsonFormatter().format(record)))
    finally:
        await engine.dispose()
    assert len(lines) == 2
    for line in lines:
        assert "leak" in line["exception"]  # the error is still there, with its table and constraint
        assert SECRET not in line["exception"], line["exception"]
        assert "[redacted]" in line["exception"]
