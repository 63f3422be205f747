"""Webhooks end to end: admin GraphQL, enqueue in a transaction, the sender, a real receiving server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from dsr_gateway.connectors.public_addresses import non_public_destination
from dsr_gateway.connectors.secret_box import SecretBox
from dsr_gateway.connectors.webhook_signing import sign
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.webhooks import WebhookEventType
from dsr_gateway.services.webhooks import enqueue_webhook
from dsr_gateway.worker.webhook_sender import SenderPolicy, WebhookSender
from tests.support.app import GraphQLClient, admin_token, agent_token, make_settings, subject_token
from tests.support.webhook_receiver import running_receiver

CREATE = """
mutation($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) {
    __typename
    ... on CreateWebhookSubscriptionSuccess { secret subscription { id url events active createdBy } }
    ... on UserError { message }
    ... on ValidationError { fields { field message } }
  }
}
"""
DELETE = """
mutation($id: ID!) {
  deleteWebhookSubscription(id: $id) { __typename ... on UserError { message } }
}
"""
REDELIVER = """
mutation($id: ID!) {
  redeliverWebhook(deliveryId: $id) {
    __typename
    ... on RedeliverWebhookSuccess { delivery { id status attempts redeliveryOf eventId } }
    ... on UserError { message }
  }
}
"""
DELIVERIES = """
query($sub: ID!, $first: Int!, $after: String) {
  webhookDeliveries(subscriptionId: $sub, first: $first, after: $after) {
    edges { cursor node {
      id eventId eventType payload status attempts lastStatusCode lastError deliveredAt redeliveryOf
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Harness:
    uow: Callable[[], SqlUnitOfWork]
    cipher: SecretBox

    async def enqueue(self, event_type: WebhookEventType, payload: dict[str, Any], clock: Any) -> list[int]:
        async with self.uow() as uow:
            ids = await enqueue_webhook(uow, clock, event_type, payload)
            await uow.commit()
        return ids

    def sender(self, transport: httpx.AsyncBaseTransport | None, clock: Any, **policy: Any) -> WebhookSender:
        http = httpx.AsyncClient(transport=transport)
        return WebhookSender(self.uow, http, self.cipher, clock, SenderPolicy(**policy), jitter=lambda: 0.0)


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    key = make_settings(database_url).encryption_key
    assert key is not None
    try:
        yield Harness(lambda: SqlUnitOfWork(sessions), SecretBox(key.get_secret_value()))
    finally:
        await engine.dispose()


async def subscribe(gql: GraphQLClient, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    data = await gql(CREATE, {"input": {"url": url, "events": events, **extra}}, token=admin_token())
    result: dict[str, Any] = data["createWebhookSubscription"]
    assert result["__typename"] == "CreateWebhookSubscriptionSuccess", result
    return result


async def deliveries(gql: GraphQLClient, subscription_id: str, first: int = 20) -> list[dict[str, Any]]:
    data = await gql(DELIVERIES, {"sub": subscription_id, "first": first}, token=agent_token())
    return [e["node"] for e in data["webhookDeliveries"]["edges"]]


async def test_a_real_server_receives_signed_deliveries_for_the_events_it_chose(
    gql: GraphQLClient, harness: Harness
) -> None:
    async with running_receiver() as receiver:
        created = await subscribe(gql, receiver.url, ["CONSENT_CHANGED", "SLA_ALERT"])
        receiver.secret = created["secret"]
        assert created["secret"].startswith("whsec_")
        other = await subscribe(gql, "https://elsewhere.example/hook", ["REQUEST_STATUS_CHANGED"])

        def clock() -> datetime:
            return datetime.now(UTC)

        payload = {"subjectId": "customer-1", "purpose": "marketing_email", "state": "WITHDRAWN"}
        ids = await harness.enqueue(WebhookEventType.CONSENT_CHANGED, payload, clock)
        assert len(ids) == 1  # the other subscription did not ask for consent changes
        async with httpx.AsyncClient() as http:
            sender = WebhookSender(harness.uow, http, harness.cipher, clock)
            assert await sender.run_once() == 1
            assert await sender.run_once() == 0  # nothing else due

        [received] = receiver.received
        assert received.signature_ok
        assert received.headers["x-dsr-event"] == "consent.changed"
        assert received.headers["x-dsr-delivery"] == str(ids[0])
        assert received.headers["x-dsr-signature"].startswith("v1=")
        assert received.headers["content-type"] == "application/json"
        assert received.body["type"] == "consent.changed"
        assert received.body["data"] == payload

    [logged] = await deliveries(gql, created["subscription"]["id"])
    assert logged["status"] == "DELIVERED"
    assert logged["attempts"] == 1
    assert logged["lastStatusCode"] == 200
    assert logged["deliveredAt"] is not None
    assert logged["eventType"] == "CONSENT_CHANGED"
    assert logged["eventId"] == received.body["id"]
    assert await deliveries(gql, other["subscription"]["id"]) == []


async def test_a_receiver_with_the_wrong_secret_refuses_and_the_delivery_is_retried(
    gql: GraphQLClient, harness: Harness
) -> None:
    async with running_receiver() as receiver:
        created = await subscribe(gql, receiver.url, ["SLA_ALERT"])
        receiver.secret = "not-the-secret-the-gateway-signs-with"
        clock = FakeClock()
        clock.now = datetime.now(UTC)
        await harness.enqueue(WebhookEventType.SLA_ALERT, {"requestId": "7", "level": "OVERDUE"}, clock)
        async with httpx.AsyncClient() as http:
            await WebhookSender(harness.uow, http, harness.cipher, clock, jitter=lambda: 0.0).run_once()
        assert [r.signature_ok for r in receiver.received] == [False]
    [logged] = await deliveries(gql, created["subscription"]["id"])
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("PENDING", 1, 401)
    assert logged["lastError"] == "HTTP 401"


def scripted(statuses: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen) - 1, len(statuses) - 1)])

    return httpx.MockTransport(handler)


async def test_500_twice_then_200_is_delivered_on_the_third_attempt_with_backoff(
    gql: GraphQLClient, harness: Harness
) -> None:
    created = await subscribe(gql, "https://crm.example/hooks", ["REQUEST_STATUS_CHANGED"], secret="s" * 32)
    clock = FakeClock()
    await harness.enqueue(
        WebhookEventType.REQUEST_STATUS_CHANGED, {"requestId": "1", "status": "COMPLETED"}, clock
    )
    seen: list[httpx.Request] = []
    sender = harness.sender(scripted([500, 500, 200], seen), clock, backoff_base=timedelta(seconds=30))

    assert await sender.run_once() == 1
    clock.advance(timedelta(seconds=14))  # jitter 0 -> half of 30 s: not yet due
    assert await sender.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await sender.run_once() == 1
    clock.advance(timedelta(seconds=29))  # second retry waits half of 60 s
    assert await sender.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await sender.run_once() == 1

    assert len(seen) == 3
    # The same body every time (the event is the same), each signed with its own timestamp.
    assert len({r.content for r in seen}) == 1
    for request in seen:
        timestamp = int(request.headers["x-dsr-timestamp"])
        assert request.headers["x-dsr-signature"] == sign("s" * 32, timestamp, request.content)
    [logged] = await deliveries(gql, created["subscription"]["id"])
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("DELIVERED", 3, 200)
    assert logged["lastError"] is None


async def test_always_500_gives_up_after_max_attempts_and_is_failed(
    gql: GraphQLClient, harness: Harness
) -> None:
    created = await subscribe(gql, "https://crm.example/hooks", ["SLA_ALERT"])
    clock = FakeClock()
    await harness.enqueue(WebhookEventType.SLA_ALERT, {"requestId": "2"}, clock)
    seen: list[httpx.Request] = []
    sender = harness.sender(scripted([500], seen), clock, max_attempts=4)
    for _ in range(6):
        await sender.run_once()
        clock.advance(timedelta(days=1))
    assert len(seen) == 4
    [logged] = await deliveries(gql, created["subscription"]["id"])
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("FAILED", 4, 500)


async def test_a_connection_error_is_logged_and_retried(gql: GraphQLClient, harness: Harness) -> None:
    created = await subscribe(gql, "https://down.example/hooks", ["SLA_ALERT"])
    clock = FakeClock()
    await harness.enqueue(WebhookEventType.SLA_ALERT, {"requestId": "3"}, clock)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    await harness.sender(httpx.MockTransport(refuse), clock).run_once()
    [logged] = await deliveries(gql, created["subscription"]["id"])
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("PENDING", 1, None)
    assert logged["lastError"] == "ConnectError: connection refused"


async def test_a_guarded_sender_posts_nothing_to_a_private_address(
    gql: GraphQLClient, harness: Harness
) -> None:
    async with running_receiver() as receiver:  # a real server on 127.0.0.1
        created = await subscribe(gql, receiver.url, ["SLA_ALERT"])  # development allows the address
        clock = FakeClock()
        await harness.enqueue(WebhookEventType.SLA_ALERT, {"requestId": "4"}, clock)
        async with httpx.AsyncClient() as http:
            guarded = WebhookSender(
                harness.uow, http, harness.cipher, clock, destination_guard=non_public_destination
            )
            await guarded.run_once()
        assert receiver.received == []
    [logged] = await deliveries(gql, created["subscription"]["id"])
    assert (logged["status"], logged["attempts"], logged["lastStatusCode"]) == ("PENDING", 1, None)
    assert logged["lastError"] == "not sent: 127.0.0.1 is not a public address"


async def test_production_refuses_private_webhook_addresses(database_url: str) -> None:
    settings = make_settings(database_url, env="production")
    assert not settings.webhooks_may_reach_private_addresses
    assert make_settings(database_url).webhooks_may_reach_private_addresses  # development
    assert make_settings(
        database_url, env="production", webhook_allow_private_addresses=True
    ).webhooks_may_reach_private_addresses
    application = create_app(settings)
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        gql = GraphQLClient(http, manager.app)
        for url in ("https://169.254.169.254/latest/meta-data", "http://127.0.0.1:9000/hooks"):
            data = await gql(CREATE, {"input": {"url": url, "events": ["SLA_ALERT"]}}, token=admin_token())
            result = data["createWebhookSubscription"]
            assert result["__typename"] == "ValidationError", result
            assert "public addresses only" in result["message"] + str(result.get("fields"))


async def test_an_admin_redelivers_a_failed_delivery(gql: GraphQLClient, harness: Harness) -> None:
    created = await subscribe(gql, "https://crm.example/hooks", ["CONSENT_CHANGED"])
    sub_id = created["subscription"]["id"]
    clock = FakeClock()
    await harness.enqueue(WebhookEventType.CONSENT_CHANGED, {"subjectId": "c-9"}, clock)
    await harness.sender(scripted([503], []), clock, max_attempts=1).run_once()
    [failed] = await deliveries(gql, sub_id)
    assert failed["status"] == "FAILED"

    denied = await gql(REDELIVER, {"id": failed["id"]}, token=agent_token())
    assert denied["redeliverWebhook"]["__typename"] == "PermissionDeniedError"
    missing = await gql(REDELIVER, {"id": "999999"}, token=admin_token())
    assert missing["redeliverWebhook"]["__typename"] == "NotFoundError"

    data = await gql(REDELIVER, {"id": failed["id"]}, token=admin_token())
    redelivery = data["redeliverWebhook"]["delivery"]
    assert (redelivery["status"], redelivery["attempts"], redelivery["redeliveryOf"]) == (
        "PENDING",
        0,
        failed["id"],
    )
    seen: list[httpx.Request] = []
    clock.now = datetime.now(UTC) + timedelta(minutes=1)  # the app stamped the redelivery with the real time
    assert await harness.sender(scripted([200], seen), clock).run_once() == 1
    assert seen[0].headers["x-dsr-delivery"] == redelivery["id"]

    newest, original = await deliveries(gql, sub_id)
    assert (newest["id"], newest["status"], newest["redeliveryOf"]) == (
        redelivery["id"],
        "DELIVERED",
        failed["id"],
    )
    assert newest["eventId"] == original["eventId"]
    assert original["status"] == "FAILED"  # the log of the first delivery stays as it was


async def test_deleting_a_subscription_stops_its_deliveries(gql: GraphQLClient, harness: Harness) -> None:
    created = await subscribe(gql, "https://crm.example/hooks", ["SLA_ALERT"])
    sub_id = created["subscription"]["id"]
    clock = FakeClock()
    await harness.enqueue(WebhookEventType.SLA_ALERT, {"requestId": "4"}, clock)

    assert (await gql(DELETE, {"id": sub_id}, token=agent_token()))["deleteWebhookSubscription"][
        "__typename"
    ] == "PermissionDeniedError"
    data = await gql(DELETE, {"id": sub_id}, token=admin_token())
    assert data["deleteWebhookSubscription"]["__typename"] == "DeleteWebhookSubscriptionSuccess"
    again = await gql(DELETE, {"id": sub_id}, token=admin_token())
    assert again["deleteWebhookSubscription"]["__typename"] == "NotFoundError"

    assert await harness.enqueue(WebhookEventType.SLA_ALERT, {"requestId": "5"}, clock) == []
    assert await harness.sender(scripted([200], []), clock).run_once() == 0
    [logged] = await deliveries(gql, sub_id)
    assert (logged["status"], logged["lastError"]) == ("FAILED", "subscription deleted")
    redelivered = await gql(REDELIVER, {"id": logged["id"]}, token=admin_token())
    assert redelivered["redeliverWebhook"]["__typename"] == "ConflictError"
    listed = await gql("{ webhookSubscriptions { id } }", token=admin_token())
    assert listed["webhookSubscriptions"] == []


async def test_enqueue_is_part_of_the_callers_transaction(gql: GraphQLClient, harness: Harness) -> None:
    created = await subscribe(gql, "https://crm.example/hooks", ["SLA_ALERT"])
    clock = FakeClock()
    async with harness.uow() as uow:
        assert len(await enqueue_webhook(uow, clock, WebhookEventType.SLA_ALERT, {"requestId": "6"})) == 1
        await uow.rollback()  # the change failed: its announcement goes with it
    assert await deliveries(gql, created["subscription"]["id"]) == []


async def test_deliveries_are_paginated_newest_first(gql: GraphQLClient, harness: Harness) -> None:
    created = await subscribe(gql, "https://crm.example/hooks", ["SLA_ALERT"])
    sub_id = created["subscription"]["id"]
    clock = FakeClock()
    for n in range(5):
        await harness.enqueue(WebhookEventType.SLA_ALERT, {"n": n}, clock)
    seen: list[int] = []
    after = None
    while True:
        data = await gql(DELIVERIES, {"sub": sub_id, "first": 2, "after": after}, token=agent_token())
        connection = data["webhookDeliveries"]
        seen += [e["node"]["payload"]["n"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [4, 3, 2, 1, 0]
    bad = await gql.post(DELIVERIES, {"sub": sub_id, "first": 2, "after": "nonsense"}, token=agent_token())
    assert "not a cursor" in bad.json()["errors"][0]["message"]
    too_many = await gql.post(DELIVERIES, {"sub": sub_id, "first": 1000}, token=agent_token())
    assert "between 1 and 100" in too_many.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("token", "allowed"),
    [(None, False), (subject_token(), False), (agent_token(), True), (admin_token(), True)],
)
async def test_only_staff_read_deliveries(gql: GraphQLClient, token: str | None, allowed: bool) -> None:
    response = await gql.post(DELIVERIES, {"sub": "1", "first": 5}, token=token)
    body = response.json()
    if allowed:
        assert body["data"]["webhookDeliveries"]["edges"] == []
    else:
        assert body["errors"][0]["message"] == "Only staff (agents and administrators) may read this."


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "PermissionDeniedError"),
        (agent_token(), "PermissionDeniedError"),
        (subject_token(), "PermissionDeniedError"),
    ],
)
async def test_only_admins_subscribe(gql: GraphQLClient, token: str | None, expected: str) -> None:
    data = await gql(CREATE, {"input": {"url": "https://a.example/h", "events": ["SLA_ALERT"]}}, token=token)
    assert data["createWebhookSubscription"]["__typename"] == expected


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"url": "ftp://a.example/h"}, ["url"]),
        ({"url": "not a url"}, ["url"]),
        ({"url": "https://user:pw@a.example/h"}, ["url"]),
        ({"events": []}, ["events"]),
        ({"events": ["SLA_ALERT", "SLA_ALERT"]}, ["events"]),
        ({"secret": "short"}, ["secret"]),
        ({"url": "", "events": [], "secret": "x"}, ["url", "events", "secret"]),
    ],
)
async def test_invalid_subscriptions_are_refused_with_each_field(
    gql: GraphQLClient, values: dict[str, Any], fields: list[str]
) -> None:
    data = await gql(
        CREATE,
        {"input": {"url": "https://a.example/h", "events": ["SLA_ALERT"], **values}},
        token=admin_token(),
    )
    result = data["createWebhookSubscription"]
    assert result["__typename"] == "ValidationError"
    assert [f["field"] for f in result["fields"]] == fields


async def test_the_secret_is_stored_encrypted_and_never_served(gql: GraphQLClient, harness: Harness) -> None:
    created = await subscribe(
        gql, "https://crm.example/hooks", ["SLA_ALERT"], secret="my-own-secret-of-enough-length"
    )
    assert created["secret"] == "my-own-secret-of-enough-length"
    async with harness.uow() as uow:
        from dsr_gateway.db.tables.webhooks import WebhookSubscriptionRow

        row = await uow.session.get(WebhookSubscriptionRow, int(created["subscription"]["id"]))
        assert row is not None
        assert "my-own-secret" not in row.secret_encrypted
        assert harness.cipher.decrypt(row.secret_encrypted) == "my-own-secret-of-enough-length"
    listed = await gql.post("{ webhookSubscriptions { id secret } }", token=admin_token())
    assert "Cannot query field 'secret'" in listed.json()["errors"][0]["message"]
