"""The committed SDL is the served schema; migrations at head match the models, both ways round."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.migrate import HEAD, alembic_config, downgrade, upgrade
from dsr_gateway.db.tables import metadata
from dsr_gateway.graphql.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_the_served_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed.strip() == build_schema().as_str().strip(), (
        "schema.graphql is out of date: run `dsr-gateway export-schema > schema.graphql`"
    )


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def _assert_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
        assert await connection.run_sync(_tables) == {t.name for t in metadata.sorted_tables}


async def test_empty_database_upgraded_to_head_matches_the_models(database_url: str) -> None:
    # The fixture's database is already at head; check it, then go down to nothing and back up.
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        await downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()
        await upgrade(engine)
        await _assert_matches_the_models(engine)
    finally:
        await engine.dispose()


def test_head_names_the_newest_migration() -> None:
    # `upgrade` skips Alembic when the database says HEAD: a new migration must move it.
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


async def test_a_database_one_migration_behind_is_upgraded(database_url: str) -> None:
    engine = make_engine(database_url)
    script = ScriptDirectory.from_config(alembic_config())
    previous = script.get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    try:
        await downgrade(engine, previous)
        await upgrade(engine)
        await _assert_matches_the_models(engine)
    finally:
        await engine.dispose()
