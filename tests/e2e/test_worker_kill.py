"""Kill a real worker process in the middle of a request: a new worker completes it, nothing twice, nothing
lost. The CRM downstream runs under uvicorn; its erasure answers the first call of a step only after the
worker is dead (the call's effect is applied on arrival, deduplicated by the Idempotency-Key, as the wire
contract asks of a downstream)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dsr_gateway.connectors.http_signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.support.app import TEST_JWT_SECRET, TEST_SIGNING_KEY, agent_token
from tests.support.downstream import SECRET
from tests.support.fulfilment_factories import (
    approve,
    fulfilment_settings,
    gateway,
    serve_asgi,
    shop,
    shop_env,
    submit_for_jane,
    write_systems_file,
)
from tests.support.shop import addresses
from tests.support.shop import shop_postgres_url as shop_postgres_url

__all__ = ["shop"]
ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 90  # an upper bound for a slow machine, never a timing assertion
STEPS = """query($id: ID!) { privacyRequest(id: $id) {
  status history { action } fulfilment { system phase status attempts } } }"""


class SlowCrm:
    """Applies an erasure once per Idempotency-Key; the first call of a key gets no answer until released."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.effects: Counter[str] = Counter()
        self.results: dict[str, dict[str, Any]] = {}
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def erasure(self, request: Request) -> Response:
        body = await request.body()
        verify_signature(
            SECRET, body, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER),
            __import__("time").time(),
        )  # fmt: skip
        key = request.headers["Idempotency-Key"]
        self.calls[key] += 1
        if key not in self.results:
            self.effects[key] += 1
            self.results[key] = {
                "results": [{"table": "tickets", "field": None, "action": "deleted", "rows": 4}]
            }
            self.arrived.set()
            await self.release.wait()  # the worker that made this call is killed meanwhile
        return JSONResponse(self.results[key])

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/dsr/erasure", self.erasure, methods=["POST"])])


def worker_environment(
    database_url: str, systems_file: Path, shop: AsyncEngine, tmp_path: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        DSR_DATABASE_URL=database_url,
        DSR_SYSTEMS_FILE=str(systems_file),
        DSR_EXPORT_DIR=str(tmp_path / "exports"),
        DSR_JWT_SECRET=TEST_JWT_SECRET,
        DSR_SIGNING_KEY=TEST_SIGNING_KEY,
        DSR_ENCRYPTION_KEY="test-encryption-key-0123456789abcdef0123456789",
        DSR_HMAC_KEY="test-hmac-key-0123456789abcdef0123456789abcdef",
        DSR_PUBLIC_URL="http://testserver",
        DSR_FULFILMENT_LEASE_SECONDS="2",
        DSR_FULFILMENT_POLL_SECONDS="0.2",
        DSR_OUTBOX_POLL_SECONDS="3600",
        SHOP_DATABASE_URL=shop.url.render_as_string(hide_password=False),
        CRM_DSR_SECRET=SECRET.decode(),
    )
    return env


async def start_worker(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dsr_gateway", "worker", env=env, cwd=log.parent, stdout=out, stderr=out
        )


async def no_outgoing_call(request: httpx.Request) -> httpx.Response:
    raise AssertionError("the app under test runs no worker: it must not call a downstream")


async def test_killing_the_worker_mid_request_loses_nothing_and_repeats_nothing(
    database_url: str, shop: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = SlowCrm()
    async with serve_asgi(crm.app()) as crm_url:
        shop_env(monkeypatch, shop)
        systems_file = write_systems_file(tmp_path, crm_base=f"{crm_url}/dsr")
        settings = fulfilment_settings(database_url, systems_file, tmp_path)
        env = worker_environment(database_url, systems_file, shop, tmp_path)
        log = tmp_path / "worker.log"
        async with gateway(settings, no_outgoing_call) as gw:
            request = await submit_for_jane(gw.gql, "ERASURE", {"all": True})
            await approve(gw.gql, request["id"])
            key = f"{request['id']}:erase.crm"

            first = await start_worker(env, log)
            try:
                async with asyncio.timeout(WAIT_SECONDS):
                    await crm.arrived.wait()
            finally:
                first.kill()  # SIGKILL: no cleanup, the step stays RUNNING under its lease
                await first.wait()
            before = await steps_of(gw.gql, request["id"])
            assert before["erase.shop"] == ("DONE", 1)
            assert before["erase.crm"] == ("RUNNING", 1)
            assert before["certificate.*"] == ("PENDING", 0)

            second = await start_worker(env, log)
            try:
                found = await wait_until_closed(gw.gql, request["id"])
            finally:
                second.terminate()
                await second.wait()
                crm.release.set()
            assert found["status"] == "COMPLETED", log.read_text()[-3000:]
            steps = {
                f"{s['phase'].lower()}.{s['system']}": (s["status"], s["attempts"])
                for s in found["fulfilment"]
            }
            assert steps == {
                "erase.shop": ("DONE", 1),  # finished before the kill: not run again
                "erase.crm": ("DONE", 2),  # taken over after its lease expired
                "erase.gateway": ("DONE", 1),
                "certificate.*": ("DONE", 1),
            }
            assert crm.calls == Counter({key: 2})  # called again with the same idempotency key ...
            assert crm.effects == Counter({key: 1})  # ... and so erased once
            actions = [e["action"] for e in found["history"]]
            assert actions.count("COMPLETE") == 1
            assert "FAIL" not in actions
            outbox = await gw.gql(
                "query($id: ID) { outboxMessages(requestId: $id) { kind } }",
                {"id": request["id"]},
                token=agent_token(),
            )
            assert [m["kind"] for m in outbox["outboxMessages"]].count("COMPLETED") == 1
    async with shop.connect() as connection:
        left = (await connection.execute(addresses.select().where(addresses.c.customer_id == 1))).all()
    assert left == []


async def steps_of(gql: Any, request_id: str) -> dict[str, tuple[str, int]]:
    found = (await gql(STEPS, {"id": request_id}, token=agent_token()))["privacyRequest"]
    return {f"{s['phase'].lower()}.{s['system']}": (s["status"], s["attempts"]) for s in found["fulfilment"]}


async def wait_until_closed(gql: Any, request_id: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            found: dict[str, Any] = (await gql(STEPS, {"id": request_id}, token=agent_token()))[
                "privacyRequest"
            ]
            if found["status"] in ("COMPLETED", "FAILED"):
                return found
            await asyncio.sleep(0.2)
