"""Subscriptions over real WebSockets (uvicorn + the `websockets` client), both protocols, both databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dsr_gateway.connectors.events import InProcessEventBus
from tests.support.app import admin_token, make_settings, subject_token
from tests.support.factories import PUBLISH_NOTICE, UPSERT_PURPOSE, notice_input, purpose_input
from tests.support.live_server import LiveServer, live_server

SUBSCRIPTION = "subscription { privacyNoticePublished { version summary purposes { key } } }"
WAIT_SECONDS = 15.0


class WatchedBus(InProcessEventBus):
    """The app's event bus, remembered so a test can wait until the subscription has joined."""

    instances: list[WatchedBus] = []

    def __init__(self) -> None:
        super().__init__()
        WatchedBus.instances.append(self)

    def subscribers(self) -> int:
        return sum(len(queues) for queues in self._queues.values())


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch, database_url: str) -> AsyncIterator[LiveServer]:
    WatchedBus.instances.clear()
    monkeypatch.setattr("dsr_gateway.app.InProcessEventBus", WatchedBus)
    # On PostgreSQL the LISTEN/NOTIFY bus fans out through an in-process bus of its own.
    monkeypatch.setattr("dsr_gateway.connectors.pg_events.InProcessEventBus", WatchedBus)
    async with live_server(make_settings(database_url)) as running:
        yield running


async def until_subscribed() -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        # The protocols acknowledge no subscription, and the real bus has no hook: poll it.
        while not any(bus.subscribers() for bus in WatchedBus.instances):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def receive(ws: ClientConnection, ignore: tuple[str, ...] = ("ka", "ping", "pong")) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] not in ignore:
                return message


async def publish_first_notice(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        headers = {"Authorization": f"Bearer {admin_token()}"}
        purpose = await http.post(
            "/graphql",
            json={"query": UPSERT_PURPOSE, "variables": {"input": purpose_input()}},
            headers=headers,
        )
        assert purpose.json()["data"]["upsertPurpose"]["__typename"] == "UpsertPurposeSuccess"
        notice = await http.post(
            "/graphql",
            json={"query": PUBLISH_NOTICE, "variables": {"input": notice_input(["marketing_email"])}},
            headers=headers,
        )
        result = notice.json()["data"]["publishPrivacyNotice"]
        assert result["__typename"] == "PublishPrivacyNoticeSuccess", result


EXPECTED = {
    "privacyNoticePublished": {
        "version": 1,
        "summary": "We use your email address to send you the messages you chose.",
        "purposes": [{"key": "marketing_email"}],
    }
}


@pytest.mark.parametrize("token", [None, subject_token()], ids=["anonymous", "subject"])
async def test_graphql_transport_ws_receives_a_published_notice(
    server: LiveServer, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with connect(
        f"{server.ws_url}/graphql", subprotocols=["graphql-transport-ws"], additional_headers=headers
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await receive(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        await until_subscribed()

        await publish_first_notice(server)

        message = await receive(ws)
        assert message == {"id": "1", "type": "next", "payload": {"data": EXPECTED}}
        await ws.send(json.dumps({"id": "1", "type": "complete"}))


async def test_legacy_graphql_ws_receives_a_published_notice(server: LiveServer) -> None:
    async with connect(f"{server.ws_url}/graphql", subprotocols=["graphql-ws"]) as ws:
        assert ws.subprotocol == "graphql-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await receive(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "start", "payload": {"query": SUBSCRIPTION}}))
        await until_subscribed()

        await publish_first_notice(server)

        message = await receive(ws)
        assert message == {"id": "1", "type": "data", "payload": {"data": EXPECTED}}
        await ws.send(json.dumps({"id": "1", "type": "stop"}))


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer not-a-jwt", "The bearer token is not a valid JWT."),
        ("Bearer dsr_unknown_key", "The API key is unknown or has been revoked."),
        ("Basic YTpi", "Send credentials as 'Authorization: Bearer <token>'."),
    ],
)
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_bad_credential_is_refused_at_the_handshake_with_401(
    server: LiveServer, authorization: str, message: str, protocol: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{server.ws_url}/graphql",
            subprotocols=[protocol],  # type: ignore[list-item]
            additional_headers={"Authorization": authorization},
        ):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(response.body or b"")["errors"][0]["message"] == message


@pytest.mark.parametrize(
    ("payload", "principal"),
    [
        ({"Authorization": f"Bearer {admin_token()}"}, "STAFF"),
        ({"authorization": subject_token()}, "SUBJECT"),  # the scheme may be left out
    ],
)
async def test_a_browser_signs_in_through_connection_init(
    server: LiveServer, payload: dict[str, str], principal: str
) -> None:
    """Browsers cannot set headers on a WebSocket: the token comes in connection_init instead."""
    async with connect(f"{server.ws_url}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = await receive(ws)
        assert ack == {"type": "connection_ack", "payload": {"principal": principal}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        await until_subscribed()
        await publish_first_notice(server)
        assert (await receive(ws))["type"] == "next"


@pytest.mark.parametrize("payload", [{"Authorization": "Bearer not-a-jwt"}, {"Authorization": ""}])
async def test_a_bad_credential_in_connection_init_closes_the_connection(
    server: LiveServer, payload: dict[str, str]
) -> None:
    async with connect(f"{server.ws_url}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_connection_init_cannot_name_another_caller_than_the_handshake(server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {subject_token('customer-1')}"}
    async with connect(
        f"{server.ws_url}/graphql",
        subprotocols=["graphql-transport-ws"],
        additional_headers=headers,  # type: ignore[list-item]
    ) as ws:
        payload = {"Authorization": f"Bearer {admin_token()}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
