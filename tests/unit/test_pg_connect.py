"""asyncpg connection arguments read from the database URL as SQLAlchemy's dialect reads it."""

from __future__ import annotations

from typing import Any

import pytest

from dsr_gateway.connectors.pg_connect import asyncpg_options


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://postgres@127.0.0.1:5432/app",
            {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "app"},
        ),
        (  # a password with the characters a URL escapes
            "postgresql+asyncpg://svc:p%40ss%3Aw%2Frd%3F@db.example/app",
            {"host": "db.example", "user": "svc", "password": "p@ss:w/rd?", "database": "app"},
        ),
        (  # SQLAlchemy's spelling of TLS and timeouts; PgBouncer's statement cache size
            "postgresql+asyncpg://svc@db.example/app?ssl=require&command_timeout=5"
            "&prepared_statement_cache_size=0",
            {
                "host": "db.example",
                "user": "svc",
                "database": "app",
                "ssl": "require",
                "command_timeout": 5.0,
                "statement_cache_size": 0,
            },
        ),
        (  # several hosts: failover keeps every one
            "postgresql+asyncpg://svc@/app?host=h1:5432&host=h2:5433",
            {"host": ["h1", "h2"], "port": [5432, 5433], "user": "svc", "database": "app"},
        ),
        (  # a Unix socket
            "postgresql+asyncpg://svc@/app?host=/var/run/postgresql",
            {"host": "/var/run/postgresql", "user": "svc", "database": "app"},
        ),
    ],
)
def test_connection_arguments(url: str, expected: dict[str, Any]) -> None:
    assert asyncpg_options(url) == expected
