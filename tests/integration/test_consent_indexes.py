"""The consent ledger's lookups can use the indexes made for them (a partial index must be implied by the
query's own conditions, or the planner cannot use it)."""

from __future__ import annotations

from sqlalchemy import text

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.repositories.consent import D_EVENTS_FOR_KEY


async def test_a_replay_finds_its_key_through_the_keyed_events_index(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            compiled = D_EVENTS_FOR_KEY.compiled_for(connection.dialect, {"subject_id": 1, "key": "k"})
            if connection.dialect.name == "sqlite":
                # INDEXED BY fails the statement when the index cannot serve the query.
                sql = compiled.text.replace(
                    "FROM consent_event", "FROM consent_event INDEXED BY ix_consent_event_idempotency"
                )
                assert sql != compiled.text
                plan = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1, "k"))
            else:
                # The other indexes on subject_id and the sequential scan out of the way (rolled back).
                await connection.execute(text("DROP INDEX ix_consent_event_subject_id_id"))
                await connection.execute(text("DROP INDEX uq_consent_event_chain"))
                await connection.execute(text("SET LOCAL enable_seqscan = off"))
                plan = await connection.exec_driver_sql(
                    "EXPLAIN " + compiled.text.replace("$1", "1").replace("$2", "'k'")
                )
            lines = " ".join(str(row[-1]) for row in plan)
            await connection.rollback()
        assert "ix_consent_event_idempotency" in lines, lines
    finally:
        await engine.dispose()
