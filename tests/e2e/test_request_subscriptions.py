"""Live updates over a real WebSocket against a real uvicorn, on both subscription protocols.

On PostgreSQL the events travel through LISTEN/NOTIFY; on SQLite through the in-process bus. The server
runs the worker loops itself, so its SLA sweep raises the alert.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from dsr_gateway.app import create_app
from tests.support.app import GraphQLClient, admin_token, agent_token, make_settings, subject_token
from tests.support.request_factories import APPROVE, ASSIGN, act, create_request, submit
from tests.support.smtp import free_port

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[str]:
    settings = make_settings(database_url, worker_in_process=True, sla_sweep_seconds=0.2)
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    async with asyncio.timeout(20):
        while not instance.started:  # noqa: ASYNC110 (uvicorn exposes only a flag)
            await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        await task


class Subscription:
    def __init__(self, ws: Any, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    @classmethod
    async def open(
        cls, address: str, protocol: str, token: str, query: str, variables: dict[str, Any]
    ) -> Subscription:
        ws = await websockets.connect(
            f"ws://{address}/graphql",
            subprotocols=[protocol],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {token}"},
        )
        self = cls(ws, protocol)
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        while (await self._receive())["type"] != "connection_ack":
            pass
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        await ws.send(
            json.dumps({"id": "1", "type": start, "payload": {"query": query, "variables": variables}})
        )
        await asyncio.sleep(0.3)  # the server joins the channel when it starts the subscription
        return self

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.ws.recv())
        return message

    async def next(self) -> dict[str, Any]:
        data_type = "next" if self.protocol == "graphql-transport-ws" else "data"
        async with asyncio.timeout(15):
            while True:
                message = await self._receive()
                if message["type"] == data_type:
                    assert not message["payload"].get("errors"), message
                    payload: dict[str, Any] = message["payload"]["data"]
                    return payload
                assert message["type"] in ("ping", "pong", "ka"), message

    async def close(self) -> None:
        await self.ws.close()


UPDATED = """
subscription($id: ID) {
  privacyRequestUpdated(id: $id) { requestId action status request { id status version } }
}
"""
ALERTS = "subscription { slaAlerts { requestId kind dueAt jurisdiction } }"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_updates_reach_the_owner_and_staff_but_not_another_subject(server: str, protocol: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        gql = GraphQLClient(http, None)  # type: ignore[arg-type]
        mine = await create_request(gql, subject="alice")
        theirs = await create_request(gql, subject="bob")
        alice = await Subscription.open(server, protocol, subject_token("alice"), UPDATED, {})
        staff = await Subscription.open(server, protocol, agent_token(), UPDATED, {"id": mine["id"]})
        try:
            await act(gql, APPROVE, theirs["id"])  # not alice's: she must not hear of it
            await act(gql, APPROVE, mine["id"])
            seen = (await alice.next())["privacyRequestUpdated"]
            assert seen["requestId"] == mine["id"]
            assert (seen["action"], seen["status"]) == ("APPROVE", "IN_PROGRESS")
            assert seen["request"]["version"] == 2
            staff_seen = (await staff.next())["privacyRequestUpdated"]
            assert staff_seen["requestId"] == mine["id"]
        finally:
            await alice.close()
            await staff.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_staff_receive_sla_alerts_from_the_sweep(server: str, protocol: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        gql = GraphQLClient(http, None)  # type: ignore[arg-type]
        alerts = await Subscription.open(server, protocol, agent_token(), ALERTS, {})
        try:
            received = datetime.now(UTC) - timedelta(days=44)
            logged = await submit(
                gql,
                agent_token(),
                jurisdiction="CCPA",
                subjectExternalId="late",
                receivedAt=received.isoformat(),
            )
            alert = (await alerts.next())["slaAlerts"]
            assert alert["requestId"] == logged["request"]["id"]
            assert alert["kind"] == "AT_RISK"
            assert alert["jurisdiction"] == "CCPA"
        finally:
            await alerts.close()


async def test_sla_alerts_are_for_staff_only(server: str) -> None:
    ws = await websockets.connect(
        f"ws://{server}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {subject_token()}"},
    )
    try:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ALERTS}}))
        async with asyncio.timeout(10):
            message = json.loads(await ws.recv())
        assert message["type"] in ("error", "next")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert "Only staff" in json.dumps(errors)
    finally:
        await ws.close()


NAMED_UPDATES = """
subscription Watch($id: ID) {
  privacyRequestUpdated(id: $id) { requestId action status request { id status version } }
}
"""
ACCESSES = """
query($requestId: ID) {
  personalDataAccesses(requestId: $requestId) { edges { node { actorId operation what subjectId } } }
}
"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_staff_reading_subscription_events_is_recorded_once_per_event(
    server: str, protocol: str
) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        gql = GraphQLClient(http, None)  # type: ignore[arg-type]
        mine = await create_request(gql, subject="alice")
        own = await Subscription.open(server, protocol, subject_token("alice"), NAMED_UPDATES, {})
        staff = await Subscription.open(
            server, protocol, agent_token("agent-7"), NAMED_UPDATES, {"id": mine["id"]}
        )
        try:
            await act(gql, APPROVE, mine["id"])
            await staff.next()
            await own.next()
            await act(gql, ASSIGN, mine["id"], assignee="agent-7")
            await staff.next()
            await own.next()
        finally:
            await own.close()
            await staff.close()
        await asyncio.sleep(0.2)  # the close of the operation must not record the events again
        data = await gql(ACCESSES, {"requestId": mine["id"]}, token=admin_token())
        rows = [e["node"] for e in data["personalDataAccesses"]["edges"]]
        from_events = [r for r in rows if r["what"] == "privacyRequestUpdated"]
        assert (
            from_events
            == [
                {
                    "actorId": "agent-7",
                    "operation": "Watch",
                    "what": "privacyRequestUpdated",
                    "subjectId": "alice",
                }
            ]
            * 2
        )  # one per event sent to staff; alice reading her own request is not recorded
