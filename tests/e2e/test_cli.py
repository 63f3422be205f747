"""The dsr-gateway command end to end: API keys, dev tokens, the schema export and migrations.

Each command runs through `cli.main` in a worker thread (it calls `asyncio.run` itself) against the
test's database, with the settings in the environment as an operator would give them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import inspect

from dsr_gateway import cli
from dsr_gateway.app import create_app
from dsr_gateway.db.engine import make_engine
from dsr_gateway.db.tables import metadata
from tests.support.app import make_settings
from tests.support.factories import UPSERT_PURPOSE, purpose_input

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean DSR_ environment, the working directory in tmp_path, and logging restored afterwards."""
    for name in list(os.environ):
        if name.startswith("DSR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def dsr(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str) -> Any:
    environment.setenv("DSR_DATABASE_URL", database_url)

    async def run(*argv: str) -> Run:
        code = await asyncio.to_thread(cli.main, list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@asynccontextmanager
async def client_for(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(make_settings(database_url, **overrides))
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield http


async def purposes_with(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(
        "/graphql", json={"query": "{ purposes { key } }"}, headers={"Authorization": f"Bearer {token}"}
    )


# --- API keys ------------------------------------------------------------------------------------


async def test_an_api_key_is_shown_once_works_and_stops_working_when_revoked(
    dsr: Any, database_url: str
) -> None:
    created = await dsr("apikey", "create", "--name", "crm", "--scopes", "consent:read", "export:read")
    assert created.code == 0, created.err
    assert "Created API key 'crm' with scopes consent:read export:read." in created.out
    key = created.out.strip().splitlines()[-1]
    assert re.fullmatch(r"dsr_[A-Za-z0-9_-]{43}", key)

    listed = await dsr("apikey", "list")
    assert listed.code == 0
    assert listed.out.splitlines() == [f"crm\t{key[:10]}...\tconsent:read export:read\tactive"]
    assert key not in listed.out

    async with client_for(database_url) as http:
        response = await purposes_with(http, key)
        assert (response.status_code, response.json()) == (200, {"data": {"purposes": []}})
        # An API client is not an administrator.
        denied = await http.post(
            "/graphql",
            json={"query": UPSERT_PURPOSE, "variables": {"input": purpose_input()}},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert denied.json()["data"]["upsertPurpose"]["__typename"] == "PermissionDeniedError"
        wrong = await purposes_with(http, key[:-2] + "xx")
        assert wrong.status_code == 401

    revoked = await dsr("apikey", "revoke", "--name", "crm")
    assert revoked.code == 0
    assert "Revoked API key 'crm'" in revoked.out
    listed = await dsr("apikey", "list")
    assert re.fullmatch(
        r"crm\tdsr_\S{6}\.\.\.\tconsent:read export:read\trevoked \d{4}-\d\d-\d\d\n", listed.out
    )

    # A fresh app: the running one may keep a key it checked within the last 30 seconds.
    async with client_for(database_url) as http:
        response = await purposes_with(http, key)
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"] == "The API key is unknown or has been revoked."
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--name", "crm", "--scopes", "consent:read"], "name: a key named 'crm' exists"),
        (["create", "--name", "other", "--scopes", "everything"], "scopes: unknown everything; known:"),
        (["create", "--name", " ", "--scopes", "consent:read"], "name: give the key a name"),
        (["revoke", "--name", "ghost"], "No active API key with key 'ghost' was found."),
    ],
)
async def test_apikey_mistakes_exit_1_with_a_message(dsr: Any, argv: list[str], message: str) -> None:
    assert (await dsr("apikey", "create", "--name", "crm", "--scopes", "consent:read")).code == 0
    result = await dsr("apikey", *argv)
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert message in result.err
    assert "Traceback" not in result.err
    assert len((await dsr("apikey", "list")).out.splitlines()) == 1


async def test_revoking_twice_says_the_key_is_not_active(dsr: Any) -> None:
    await dsr("apikey", "create", "--name", "crm", "--scopes", "consent:read")
    assert (await dsr("apikey", "revoke", "--name", "crm")).code == 0
    again = await dsr("apikey", "revoke", "--name", "crm")
    assert again.code == 1
    assert "No active API key with key 'crm' was found." in again.err


# --- development tokens --------------------------------------------------------------------------


async def test_dev_tokens_are_accepted_as_subject_agent_and_admin(dsr: Any, database_url: str) -> None:
    result = await dsr("dev-tokens", "--subject", "alice")
    assert result.code == 0, result.err
    tokens = dict(re.findall(r"^(\w+_TOKEN)=(\S+)$", result.out, re.MULTILINE))
    assert set(tokens) == {"SUBJECT_TOKEN", "AGENT_TOKEN", "ADMIN_TOKEN"}

    # The server fills its secret from the same development file (in the working directory).
    async with client_for(database_url, jwt_secret=None) as http:
        for name in tokens:
            assert (await purposes_with(http, tokens[name])).status_code == 200
        roles = {}
        for name, token in tokens.items():
            response = await http.post(
                "/graphql",
                json={"query": UPSERT_PURPOSE, "variables": {"input": purpose_input(key=name.lower())}},
                headers={"Authorization": f"Bearer {token}"},
            )
            roles[name] = response.json()["data"]["upsertPurpose"]["__typename"]
        assert roles == {
            "SUBJECT_TOKEN": "PermissionDeniedError",
            "AGENT_TOKEN": "PermissionDeniedError",
            "ADMIN_TOKEN": "UpsertPurposeSuccess",
        }
        me = await http.post(
            "/graphql",
            json={"query": "{ me { externalId } }"},
            headers={"Authorization": f"Bearer {tokens['SUBJECT_TOKEN']}"},
        )
        assert me.json() == {"data": {"me": {"externalId": "alice"}}}


async def test_dev_tokens_carry_the_configured_audience_and_issuer(
    dsr: Any, environment: pytest.MonkeyPatch, database_url: str
) -> None:
    environment.setenv("DSR_JWT_AUDIENCE", "dsr")
    environment.setenv("DSR_JWT_ISSUER", "https://dev.example/")
    tokens = dict(re.findall(r"^(\w+_TOKEN)=(\S+)$", (await dsr("dev-tokens")).out, re.MULTILINE))
    async with client_for(
        database_url, jwt_secret=None, jwt_audience="dsr", jwt_issuer="https://dev.example/"
    ) as http:
        assert (await purposes_with(http, tokens["ADMIN_TOKEN"])).status_code == 200


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {
                "DSR_ENV": "production",
                "DSR_JWT_SECRET": "p" * 40,
                "DSR_ENCRYPTION_KEY": "e",
                "DSR_HMAC_KEY": "h",
                "DSR_SIGNING_KEY": "A" * 43 + "=",
            },
            "error: dev-tokens works only with DSR_ENV=development.",
        ),
        (
            {"DSR_JWKS_URL": "https://idp.example/jwks"},
            "error: dev-tokens signs with DSR_JWT_SECRET; with only DSR_JWKS_URL set, get tokens from "
            "your identity provider.",
        ),
    ],
)
async def test_dev_tokens_refuses_when_it_cannot_mint_working_tokens(
    dsr: Any, environment: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    result = await dsr("dev-tokens")
    assert result.code == 1
    assert result.err.strip() == message
    assert "TOKEN=" not in result.out


# --- schema and migrations -----------------------------------------------------------------------


def test_export_schema_prints_the_committed_sdl(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("DSR_DATABASE_URL", "not even a url")  # export-schema needs no settings
    assert cli.main(["export-schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "schema.graphql").read_text()


async def test_migrate_creates_the_tables(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "fresh.db"
    environment.setenv("DSR_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    for _ in range(2):  # a second run finds nothing to do
        assert await asyncio.to_thread(cli.main, ["migrate"]) == 0
        assert capsys.readouterr().out == "The database is at the latest schema.\n"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert names == {t.name for t in metadata.sorted_tables} | {"alembic_version"}


async def test_migrate_on_a_database_at_head_is_a_no_op(dsr: Any) -> None:
    for _ in range(2):
        result = await dsr("migrate")
        assert (result.code, result.out) == (0, "The database is at the latest schema.\n")


async def test_serve_migrates_and_makes_the_dev_secrets_before_starting_workers(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.setenv("DSR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'served.db'}")
    seen: list[tuple[bool, bool, int | None]] = []

    def run(*args: object, **kwargs: Any) -> None:
        seen.append(
            (
                (tmp_path / "served.db").is_file(),
                (tmp_path / ".dsr_gateway_dev_secrets.json").is_file(),
                kwargs["workers"],
            )
        )

    environment.setattr("uvicorn.run", run)
    assert await asyncio.to_thread(cli.main, ["serve", "--workers", "3"]) == 0
    # Three workers would otherwise race to create the secrets file (O_EXCL: all but one fail).
    assert seen == [(True, True, 3)]
