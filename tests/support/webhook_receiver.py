"""A real HTTP server for webhook tests: a small Starlette app under uvicorn on a free port.

It checks each delivery's signature the way a customer's receiver would (docs/communication.md).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dsr_gateway.connectors.webhook_signing import verify_signature


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    signature_ok: bool


@dataclass
class WebhookReceiver:
    url: str
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> PlainTextResponse:
        raw = await request.body()
        ok = verify_signature(
            self.secret,
            request.headers.get("x-dsr-timestamp", ""),
            request.headers.get("x-dsr-signature", ""),
            raw,
            now=time.time(),
        )
        self.received.append(Received(dict(request.headers), json.loads(raw), ok))
        self.arrived.set()
        return PlainTextResponse("ok" if ok else "bad signature", status_code=200 if ok else 401)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[WebhookReceiver]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hooks/dsr")
    app = Starlette(routes=[Route("/hooks/dsr", receiver.endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
