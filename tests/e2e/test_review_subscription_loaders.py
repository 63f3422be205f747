"""Review finding: a subscription's per-event fields must not come from the first event's DataLoaders.

The context (and its `loaders` dict) lives as long as the WebSocket connection, so a DataLoader made
for the first event would answer every later event of the same request from its cache.
"""

from __future__ import annotations

import httpx

from tests.e2e.test_request_subscriptions import Subscription, server
from tests.support.app import GraphQLClient, agent_token
from tests.support.request_factories import APPROVE, ASSIGN, act, create_request

__all__ = ["server"]

WITH_HISTORY = """
subscription($id: ID) {
  privacyRequestUpdated(id: $id) { action request { version history { action } } }
}
"""


async def test_each_update_shows_the_history_as_of_that_update(server: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        gql = GraphQLClient(http, None)  # type: ignore[arg-type]
        request = await create_request(gql, subject="alice")
        staff = await Subscription.open(
            server, "graphql-transport-ws", agent_token(), WITH_HISTORY, {"id": request["id"]}
        )
        try:
            await act(gql, APPROVE, request["id"])
            first = (await staff.next())["privacyRequestUpdated"]
            await act(gql, ASSIGN, request["id"], assignee="agent-7")
            second = (await staff.next())["privacyRequestUpdated"]
        finally:
            await staff.close()
    assert first["action"] == "APPROVE"
    assert [e["action"] for e in first["request"]["history"]][-1] == "APPROVE"
    assert second["action"] == "ASSIGN"
    assert second["request"]["version"] == first["request"]["version"] + 1
    assert [e["action"] for e in second["request"]["history"]][-2:] == ["APPROVE", "ASSIGN"]
