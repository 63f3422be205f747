"""The app under test through httpx.ASGITransport, with a small GraphQL helper and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from dsr_gateway.app import create_app
from dsr_gateway.http.auth import mint_token
from dsr_gateway.settings import Settings

# Tokens are often made when tests are collected: a day of validity outlasts any run.
TOKEN_LIFETIME = 86_400
TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
# Base64 of a raw 32-byte Ed25519 private key (test only).
TEST_SIGNING_KEY = "dGVzdC1zaWduaW5nLWtleS0zMi1ieXRlcy1sb25nISE="


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "encryption_key": "test-encryption-key-0123456789abcdef0123456789",
        "hmac_key": "test-hmac-key-0123456789abcdef0123456789abcdef",
        "signing_key": TEST_SIGNING_KEY,
        "public_url": "http://testserver",
        # Tests drive the outbox and the sweep themselves; one test starts the loops on purpose.
        "worker_in_process": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def subject_token(external_id: str = "customer-1") -> str:
    return mint_token(TEST_JWT_SECRET, external_id, lifetime_seconds=TOKEN_LIFETIME)


def agent_token(agent_id: str = "agent-1") -> str:
    return mint_token(TEST_JWT_SECRET, agent_id, roles=["agent"], lifetime_seconds=TOKEN_LIFETIME)


def admin_token(admin_id: str = "admin-1") -> str:
    return mint_token(TEST_JWT_SECRET, admin_id, roles=["admin"], lifetime_seconds=TOKEN_LIFETIME)


def client_token(scope: str, client_id: str = "client-1") -> str:
    return mint_token(TEST_JWT_SECRET, client_id, scope=scope, lifetime_seconds=TOKEN_LIFETIME)


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient
    app: Starlette

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run an operation that must succeed at the GraphQL level; return its `data`."""
        response = await self.post(query, variables, token, headers)
        body = response.json()
        assert response.status_code == 200, body
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(database_url))
    async with LifespanManager(application) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
async def gql(app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield GraphQLClient(http, app)
