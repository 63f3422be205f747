"""After PostgreSQL drops every connection (a restart, a failover), consent writes come back at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.support.app import GraphQLClient, client_token
from tests.support.consent_factories import SET_CONSENTS, choice, seed_catalogue, set_consents

WRITER = client_token("consent:write consent:read")


async def test_writes_recover_after_the_server_drops_every_connection(
    gql: GraphQLClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server closing its connections (SQLite has none)")
    await seed_catalogue(gql)
    # Several pooled write connections.
    await asyncio.gather(*(set_consents(gql, choice(), token=WRITER, subjectId=f"d-{i}") for i in range(6)))
    url = make_url(database_url)
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.3)
    outcomes = []
    for _ in range(12):
        variables = {
            "input": {"subjectId": "d-x", "choices": [choice()], "noticeVersion": 1, "method": "API"}
        }
        body = (await gql.post(SET_CONSENTS, variables, token=WRITER)).json()
        outcomes.append((body.get("data") or {}).get("setConsents", {}).get("__typename"))
    # The write that meets a dead connection fails (nothing half-written); the pool is then discarded
    # and every later write gets a fresh connection.
    assert outcomes[0] in (None, "SetConsentsSuccess")
    assert outcomes[1:] == ["SetConsentsSuccess"] * 11, outcomes
