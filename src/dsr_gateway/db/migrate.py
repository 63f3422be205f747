"""Run Alembic migrations from code (the CLI, `serve` at start, the tests).

A database already at HEAD (the usual case for every command after the first) is recognised with one
query, without importing Alembic: that import is ~0.2 s of every command's start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (a test checks it is Alembic's head).
HEAD = "0014_keyed_events_index"


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    if revision == "head" and await _revision(engine) == HEAD:
        return
    from alembic import command

    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def _revision(engine: AsyncEngine) -> str | None:
    """The database's one revision, or None (no version table yet, or a branched history)."""
    try:
        async with engine.connect() as connection:
            revisions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
            found = list(revisions)
    except DBAPIError:  # no such table: a new database
        return None
    return found[0] if len(found) == 1 else None


async def _run(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    def in_connection(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config)

    async with engine.connect() as connection:
        await connection.run_sync(in_connection)
        await connection.commit()
