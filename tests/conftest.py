"""Fixtures shared by every test: the two databases, the app, a GraphQL client, tokens."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import databases

pytest_plugins = ["tests.support.app", "tests.support.accountability_factories"]


@pytest.fixture(autouse=True)
def restore_root_logging() -> Iterator[None]:
    """CLI tests install the JSON log handler on the captured stderr; put the root logger back after
    each test so that later threads (aiosmtpd, uvicorn) never write to a closed capture."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sqlite-template")
    return databases.run_blocking(lambda: databases.make_sqlite_template(directory))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    server = databases.skip_or_fail_without_postgres()
    url = databases.run_blocking(lambda: databases.create_postgres_database(server))
    yield url
    databases.run_blocking(lambda: databases.drop_postgres_database(server, url))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[str]:
    """Each test that takes this runs once on SQLite and once on PostgreSQL, on an empty schema."""
    if request.param == "sqlite":
        yield databases.copy_sqlite(sqlite_template, tmp_path)
        return
    url: str = request.getfixturevalue("postgres_database")
    try:
        yield url
    finally:
        await databases.truncate_all(url)
