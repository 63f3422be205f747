"""Fulfilment end to end: the sample shop on the same kind of database as the gateway, a systems file
pointing at it and at a CRM downstream, an app wired to them, and helpers to submit and approve requests.

The shop and its seed come from tests/support/shop.py, the CRM from tests/support/downstream.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette

from dsr_gateway.app import create_app
from dsr_gateway.settings import Settings
from tests.support.app import GraphQLClient, agent_token, make_settings
from tests.support.downstream import SECRET
from tests.support.request_factories import APPROVE, act, submit
from tests.support.shop import EXAMPLE_SYSTEMS, seed_shop

CRM_BASE = "http://crm.test/dsr"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@pytest.fixture
async def shop(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """The seeded shop on the gateway's kind of database (SQLite file, or its own PostgreSQL database)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    else:
        url = request.getfixturevalue("shop_postgres_url")
    engine = create_async_engine(url)
    await seed_shop(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def write_systems_file(directory: Path, crm_base: str = CRM_BASE, mode: str = "sync") -> Path:
    """The example file with the CRM at `crm_base` (the shop's URL comes from SHOP_DATABASE_URL)."""
    text = EXAMPLE_SYSTEMS.read_text().replace("https://crm.example.internal/dsr", crm_base)
    text = text.replace('mode = "sync"', f'mode = "{mode}"').replace("/rectification", "/rectify")
    path = directory / "systems.toml"
    path.write_text(text)
    return path


def shop_env(monkeypatch: pytest.MonkeyPatch, shop: AsyncEngine) -> None:
    monkeypatch.setenv("SHOP_DATABASE_URL", shop.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CRM_DSR_SECRET", SECRET.decode())


def fulfilment_settings(database_url: str, systems_file: Path, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "systems_file": systems_file,
        "export_dir": tmp_path / "exports",
        "fulfilment_retry_base_seconds": 0,  # retries are due at once: the tests run the passes
        "fulfilment_max_attempts": 3,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@dataclass
class Gateway:
    gql: GraphQLClient
    state: dict[str, Any]

    async def run_worker(self, passes: int = 3) -> None:
        """What the worker loop does, a few passes (a retry after a zero backoff is due in the same pass)."""
        for _ in range(passes):
            await self.state["services"].fulfilment.run_due()


@contextlib.asynccontextmanager
async def gateway(settings: Settings, handler: Handler) -> AsyncIterator[Gateway]:
    """The gateway with every outgoing HTTP call going to `handler` (an httpx.MockTransport)."""
    app = create_app(settings, http_transport=httpx.MockTransport(handler))
    async with LifespanManager(app) as manager:
        asgi: Starlette = manager.app  # type: ignore[assignment]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi), base_url="http://testserver"
        ) as http:
            yield Gateway(GraphQLClient(http, asgi), manager._state)


def forward_to(app: Starlette) -> Handler:
    """A MockTransport handler that passes calls to a Starlette app (the CRM)."""
    transport = httpx.ASGITransport(app=app)

    async def handle(request: httpx.Request) -> httpx.Response:
        return await transport.handle_async_request(request)

    return handle


async def submit_for_jane(gql: GraphQLClient, type_: str, details: dict[str, Any]) -> dict[str, Any]:
    result = await submit(
        gql,
        agent_token(),
        type=type_,
        details=details,
        subjectExternalId="cust-1",
        email="jane@example.com",
    )
    return dict(result["request"])


async def approve(gql: GraphQLClient, request_id: str) -> dict[str, Any]:
    result = await act(gql, APPROVE, request_id)
    assert result["__typename"] == "PrivacyRequestSuccess", result
    return dict(result["request"])


@contextlib.asynccontextmanager
async def serve_asgi(app: Starlette) -> AsyncIterator[str]:
    """A real uvicorn serving `app` on a free port in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=1))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
        sock.close()
