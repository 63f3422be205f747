"""asyncpg's connection arguments for a `postgresql+asyncpg://` URL, read as SQLAlchemy reads it.

Turning the URL into a libpq string loses or misreads what SQLAlchemy's dialect understands: `?ssl=require`
would reach the server as a setting, several `host=` options would collapse into the last one, and
`prepared_statement_cache_size=0` (the PgBouncer setting) would be dropped. Used by every asyncpg
connection made outside SQLAlchemy (the consentCheck pool, the LISTEN/NOTIFY event bus).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url

# Options of SQLAlchemy's asyncpg dialect that are not asyncpg.connect() arguments.
_DIALECT_ONLY = ("prepared_statement_name_func", "async_fallback", "async_creator_fn")


def asyncpg_options(url: str) -> dict[str, Any]:
    dialect: Any = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    _, options = dialect.create_connect_args(make_url(url))
    for name in _DIALECT_ONLY:
        options.pop(name, None)
    cache_size = options.pop("prepared_statement_cache_size", None)
    if cache_size is not None:
        options["statement_cache_size"] = int(cache_size)
    if "command_timeout" in options:
        options["command_timeout"] = float(options["command_timeout"])
    return dict(options)
