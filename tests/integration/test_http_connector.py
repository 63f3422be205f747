"""The HTTP connector: signed calls, paging, results, and failures classified retryable or permanent."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import uvicorn

from dsr_gateway.connectors.http_connector import HttpConnector
from dsr_gateway.connectors.http_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    sign,
    verify_signature,
)
from dsr_gateway.services.fulfilment_ports import (
    ConnectorError,
    ConsentChange,
    ErasureAction,
    LegalHold,
    PermanentConnectorError,
    RectifyOutcome,
    RetryableConnectorError,
    StepRef,
    SubjectIdentifiers,
)
from tests.support.downstream import SECRET, Crm, crm_config

JANE = SubjectIdentifiers("cust-1", "jane@example.com")
STEP = StepRef("req-42", "erase-crm")
Handler = Callable[[httpx.Request], httpx.Response]


def verified(request: httpx.Request) -> dict[str, object]:
    """What a downstream does first: check the signature, then read the body."""
    body = request.content
    verify_signature(
        SECRET,
        body,
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGNATURE_HEADER),
        time.time(),
    )
    payload: dict[str, object] = json.loads(body)
    return payload


def mock_connector(handler: Handler, **overrides: object) -> HttpConnector:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpConnector(
        "crm",
        crm_config("https://crm.test/dsr", **overrides),
        SECRET,
        client,
        callback_base_url="https://gateway.test/callbacks/fulfilment",
    )


async def test_calls_are_signed_and_carry_the_step_as_idempotency_key() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({**verified(request), "key": request.headers["Idempotency-Key"], "url": str(request.url)})
        return httpx.Response(
            200, json={"results": [{"table": "t", "field": "f", "action": "nulled", "rows": 2}]}
        )

    result = await mock_connector(handler).erase(JANE, [LegalHold("billing", "tax")], STEP)
    assert [(i.table, i.field, i.action, i.rows) for i in result.items] == [
        ("t", "f", ErasureAction.NULLED, 2)
    ]
    assert seen == [
        {
            "subject": {"external_id": "cust-1", "email": "jane@example.com"},
            "holds": [{"category": "billing", "reason": "tax"}],
            "request_id": "req-42",
            "step": "erase-crm",
            "key": "req-42:erase-crm",
            "url": "https://crm.test/dsr/erasure",
        }
    ]


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (lambda r: httpx.Response(500, text="boom"), RetryableConnectorError, "answered 500: boom"),
        (lambda r: httpx.Response(503), RetryableConnectorError, "answered 503"),
        (lambda r: httpx.Response(429), RetryableConnectorError, "answered 429"),
        (lambda r: httpx.Response(404, text="no route"), PermanentConnectorError, "refused the call (404)"),
        (lambda r: httpx.Response(401), PermanentConnectorError, "refused the call (401)"),
        (lambda r: httpx.Response(200, text="<html>"), PermanentConnectorError, "not JSON"),
        (lambda r: httpx.Response(200, json=[1]), PermanentConnectorError, "not an object"),
        (
            lambda r: httpx.Response(200, json={"results": [{"action": "shredded"}]}),
            PermanentConnectorError,
            "unknown erasure action 'shredded'",
        ),
        (lambda r: httpx.Response(200, json={"ok": True}), PermanentConnectorError, "no 'results' list"),
    ],
)
async def test_answers_are_classified(answer: Handler, error: type[ConnectorError], message: str) -> None:
    with pytest.raises(error) as caught:
        await mock_connector(answer).erase(JANE, [])
    assert message in str(caught.value)
    assert caught.value.system == "crm"


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        (httpx.ReadTimeout("slow"), "did not answer within 2 s"),
        (httpx.ConnectTimeout("slow"), "did not answer within 2 s"),
        (httpx.ConnectError("refused"), "unreachable: ConnectError"),
        (httpx.RemoteProtocolError("reset"), "unreachable: RemoteProtocolError"),
    ],
)
async def test_network_failures_are_retryable(exception: Exception, message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    with pytest.raises(RetryableConnectorError, match=message) as caught:
        await mock_connector(handler).rectify(JANE, {"phone": "1"})
    assert caught.value.retryable


async def test_a_downstream_that_fails_twice_then_succeeds_succeeds_on_the_third_call() -> None:
    answers = iter([httpx.Response(502), httpx.Response(503), httpx.Response(204)])
    crm = mock_connector(lambda r: next(answers))
    for _ in range(2):
        with pytest.raises(RetryableConnectorError):
            await crm.notify_consent_change(JANE, ["newsletter"], ConsentChange.WITHDRAWN, STEP)
    told = await crm.notify_consent_change(JANE, ["newsletter"], ConsentChange.WITHDRAWN, STEP)
    assert told.told
    assert not told.pending


async def test_callback_mode_passes_the_callback_url_and_reports_pending() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(verified(request))
        return httpx.Response(202)

    result = await mock_connector(handler, mode="callback").erase(JANE, [], STEP)
    assert result.pending
    assert seen[0]["callback_url"] == "https://gateway.test/callbacks/fulfilment/req-42/erase-crm"


async def test_missing_endpoints_are_reported_not_failed() -> None:
    crm = mock_connector(lambda r: httpx.Response(500), endpoints={"access": "/access"})
    erased = await crm.erase(JANE, [])
    assert [(i.action, i.reason) for i in erased.items] == [
        (ErasureAction.KEPT, "the system declares no erasure endpoint")
    ]
    rectified = await crm.rectify(JANE, {"phone": "1"})
    assert [f.outcome for f in rectified.fields] == [RectifyOutcome.NOT_HELD]
    told = await crm.notify_consent_change(JANE, ["x"], ConsentChange.WITHDRAWN)
    assert not told.told


def test_signature_verification_refuses_forgeries_and_replays() -> None:
    body = b'{"a":1}'
    now = 1_800_000_000
    good = sign(SECRET, now, body)
    verify_signature(SECRET, body, str(now), good, now + 299)
    verify_signature(SECRET, body, str(now), f"v1=00, {good}", now)  # rotation: any one may match
    for timestamp, signature, at, reason in [
        (str(now), good, now + 301, "more than 300 seconds"),
        (str(now), good, now - 301, "more than 300 seconds"),
        (str(now), sign(b"other", now, body), now, "does not match"),
        (str(now + 1), good, now, "does not match"),
        ("yesterday", good, now, "not a Unix time"),
        (None, good, now, "headers are required"),
        (str(now), None, now, "headers are required"),
    ]:
        with pytest.raises(InvalidSignature, match=reason):
            verify_signature(SECRET, body, timestamp, signature, at)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(SECRET, body + b" ", str(now), good, now)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def crm_server() -> AsyncIterator[tuple[Crm, str]]:
    """The downstream CRM under a real uvicorn on a free local port."""
    crm = Crm()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(crm.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # waits for the socket to listen; not a timing assertion
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the downstream did not start"
    try:
        yield crm, f"http://127.0.0.1:{port}/dsr"
    finally:
        server.should_exit = True
        await task


async def test_against_a_real_downstream_under_uvicorn(crm_server: tuple[Crm, str]) -> None:
    crm, base_url = crm_server
    async with httpx.AsyncClient() as client:
        connector = HttpConnector("crm", crm_config(base_url), SECRET, client)
        batches = [b async for b in connector.access(JANE, STEP)]
        tickets = [row for b in batches if b.table == "tickets" for row in b.rows]
        assert [t[0] for t in tickets] == [1, 3, 5, 7]  # four tickets over two pages, none of John's
        assert [b.table for b in batches] == ["tickets", "contact", "tickets"]

        rectified = await connector.rectify(JANE, {"phone": "+1 999", "shoe": "38"}, STEP)
        by_field = {f.field: f for f in rectified.fields}
        assert by_field["phone"].outcome is RectifyOutcome.APPLIED
        assert by_field["phone"].for_history()["old"] == ["[redacted]"]  # declared sensitive
        assert by_field["shoe"].outcome is RectifyOutcome.NOT_HELD

        erased = await connector.erase(JANE, [], STEP)
        assert [(i.table, i.action, i.rows) for i in erased.items] == [
            ("tickets", ErasureAction.DELETED, 4),
            ("contact", ErasureAction.ERASED, 1),
        ]
        assert {t["customer"] for t in crm.tickets} == {"cust-2"}
        assert [b async for b in connector.access(JANE)] == []

        forged = HttpConnector("crm", crm_config(base_url), b"wrong-secret", client)
        with pytest.raises(PermanentConnectorError, match="refused the call \\(401\\)"):
            await forged.erase(JANE, [])
    assert all(call["idempotency"] in (None, "req-42:erase-crm") for call in crm.calls)
