"""A real uvicorn server in the test's event loop, for tests that need real sockets (WebSockets).

    async with live_server(make_settings(database_url)) as server:
        httpx.AsyncClient(base_url=server.http_url) ...; websockets connect(server.ws_url + "/graphql")

or take the `live_server_url` fixture (on SQLite and PostgreSQL, through `database_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import uvicorn

from dsr_gateway.app import create_app
from dsr_gateway.settings import Settings
from tests.support.app import make_settings

STARTUP_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class LiveServer:
    host: str
    port: int

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """Serve `create_app(settings)` on a free port until the block ends; the socket is bound first,
    so no other process can take the port between choosing it and serving on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    config = uvicorn.Config(
        create_app(settings),
        log_config=None,
        lifespan="on",
        ws="websockets-sansio",
        ws_ping_interval=None,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    # uvicorn would install its own SIGINT/SIGTERM handlers: pytest keeps its own.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield LiveServer(host, port)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def live_server_url(database_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(database_url)) as server:
        yield server
