"""A failed statement's error never quotes its parameters (subject ids, addresses) into logs."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.read_engine import make_read_engine


@pytest.mark.parametrize("factory", [make_engine, make_read_engine])
async def test_errors_hide_parameters(database_url: str, factory: object) -> None:
    engine = factory(database_url)  # type: ignore[operator]
    secret = "amy.secret@example.com"
    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TEMPORARY TABLE t (email TEXT UNIQUE)"))
            await connection.execute(text("INSERT INTO t VALUES (:e)"), {"e": secret})
            with pytest.raises(IntegrityError) as failed:
                await connection.execute(text("INSERT INTO t VALUES (:e)"), {"e": secret})
    finally:
        await engine.dispose()
    message = str(failed.value)
    assert "INSERT INTO t" in message  # the statement is still shown
    assert secret not in message.split("DETAIL")[0]  # PostgreSQL's own DETAIL line aside
    assert "parameters hidden" in message
