"""Real databases for the tests: a migrated SQLite file per test, and a PostgreSQL database per run.

PostgreSQL comes from DSR_TEST_DATABASE_URL (default: the local server). When no server answers the
PostgreSQL tests are skipped with the reason, except under CI=true where that is a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.migrate import upgrade
from dsr_gateway.db.tables import metadata

T = TypeVar("T")
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def run_blocking(coroutine_function: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run async set-up from a sync fixture, even when an event loop is running in this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function())).result()


def postgres_server_url() -> str:
    return os.environ.get("DSR_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _postgres_answers(url: str) -> str | None:
    try:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


def skip_or_fail_without_postgres() -> str:
    """The server URL, or skip (locally) / fail (CI) with the reason no server answers."""
    url = postgres_server_url()
    problem = run_blocking(lambda: _postgres_answers(url))
    if problem:
        where = make_url(url).render_as_string()
        reason = f"PostgreSQL at {where} does not answer ({problem}); set DSR_TEST_DATABASE_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


async def create_postgres_database(server_url: str) -> str:
    """A fresh database for this test run, migrated to head; returns its SQLAlchemy URL."""
    name = f"dsr_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


async def drop_postgres_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def truncate_all(url: str) -> None:
    """Empty every table (the migrations' own bookkeeping stays) so the next test starts clean."""
    engine = make_engine(url)
    # The feed's followers keep their rows (the migrations made them), back at the ledger's start.
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name != "consent_followup")
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await connection.execute(text("UPDATE consent_followup SET tx_order = 0, event_id = 0"))
    await engine.dispose()


async def make_sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    await engine.dispose()
    return path


def copy_sqlite(template: Path, directory: Path) -> str:
    target = directory / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"
