"""One-click unsubscribe pages, the GPC well-known file and the GPC middleware, over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dsr_gateway.connectors.link_signing import LinkSigner, UnsubscribeLinks
from dsr_gateway.domain.errors import Conflict, HeldTooLong, NotFound, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.domain.unsubscribe import ReconfirmClaims, UnsubscribeClaims
from dsr_gateway.http import unsubscribe
from dsr_gateway.http.middleware.gpc import GpcMiddleware
from tests.support.app import GraphQLClient

KEY = "test-hmac-key-0123456789abcdef0123456789abcdef"  # the one make_settings gives the app
SIGNER = LinkSigner({1: KEY}, 1)
CLAIMS = UnsubscribeClaims("customer-1", "marketing_email", "promotions", "EMAIL")
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


class WithdrawRecorder:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.error = error

    async def __call__(
        self, subject_external_id: str, purpose: str, topic: str | None, channel: str | None, *, method: str
    ) -> None:
        self.calls.append((subject_external_id, purpose, topic, channel, method))
        if self.error:
            raise self.error


def routes_app(state: dict[str, Any]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield state

    return Starlette(
        routes=[
            Route("/unsubscribe/{token}", unsubscribe.unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe.unsubscribe_post, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


@contextlib.asynccontextmanager
async def client(state: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    from asgi_lifespan import LifespanManager

    async with LifespanManager(routes_app(state)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_get_shows_a_confirmation_page_and_post_withdraws_idempotently() -> None:
    recorder = WithdrawRecorder()
    token = SIGNER.unsubscribe_token(CLAIMS)
    async with client({"link_signer": SIGNER, "unsubscribe_withdraw": recorder}) as http:
        page = await http.get(f"/unsubscribe/{token}")
        assert page.status_code == 200
        assert '<form method="post">' in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert "marketing_email (promotions) by email" in page.text
        assert "<script" not in page.text
        assert "http" not in page.text.split("<body", 1)[1]  # no external assets
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert recorder.calls == []  # a GET (a link scanner) changes nothing

        for _ in range(2):
            done = await http.post(
                f"/unsubscribe/{token}", content="List-Unsubscribe=One-Click", headers=ONE_CLICK
            )
            assert done.status_code == 200
            assert "You are unsubscribed" in done.text
    assert (
        recorder.calls == [("customer-1", "marketing_email", "promotions", "EMAIL", "UNSUBSCRIBE_LINK")] * 2
    )


async def test_a_mail_provider_multipart_post_withdraws() -> None:
    recorder = WithdrawRecorder()
    token = SIGNER.unsubscribe_token(CLAIMS)
    async with client({"link_signer": SIGNER, "unsubscribe_withdraw": recorder}) as http:
        response = await http.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert len(recorder.calls) == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
        ("x", "text/plain"),
    ],
)
async def test_a_post_without_one_click_changes_nothing(body: str, content_type: str) -> None:
    recorder = WithdrawRecorder()
    token = SIGNER.unsubscribe_token(CLAIMS)
    async with client({"link_signer": SIGNER, "unsubscribe_withdraw": recorder}) as http:
        response = await http.post(
            f"/unsubscribe/{token}", content=body, headers={"content-type": content_type}
        )
    assert response.status_code == 400
    assert recorder.calls == []


def _bad_tokens() -> list[tuple[str, str, int]]:
    good = SIGNER.unsubscribe_token(CLAIMS)
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    return [
        ("garbage", "not-a-token", 404),
        ("flipped", flipped, 404),
        ("other key", LinkSigner({1: "some-other-key-0123456789abcdef"}, 1).unsubscribe_token(CLAIMS), 404),
        ("reconfirm token", SIGNER.reconfirm_token(ReconfirmClaims("customer-1", "marketing_email")), 400),
        ("expired", SIGNER.unsubscribe_token(CLAIMS, expires_at=datetime.now(UTC) - timedelta(days=1)), 400),
    ]


@pytest.mark.parametrize(("name", "token", "status"), _bad_tokens())
async def test_bad_tokens_are_a_page_never_a_500(name: str, token: str, status: int) -> None:
    recorder = WithdrawRecorder()
    async with client({"link_signer": SIGNER, "unsubscribe_withdraw": recorder}) as http:
        page = await http.get(f"/unsubscribe/{token}")
        post = await http.post(
            f"/unsubscribe/{token}", content="List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
    assert (page.status_code, post.status_code) == (status, status)
    assert "<form" not in page.text
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("purpose", "marketing_email"), 200),
        (ValidationFailed.single("purpose", "nope"), 400),
        (RuntimeError("db down"), 503),
        # Held by an import past the lock timeout, or given up for concurrent writes: nothing recorded;
        # a 503 with Retry-After has a mail provider send the one-click POST again (a 4xx would end it).
        (HeldTooLong(), 503),
        (Conflict("given up for a concurrent write"), 503),
    ],
)
async def test_failures_of_the_withdrawal(error: Exception, status: int) -> None:
    token = SIGNER.unsubscribe_token(CLAIMS)
    async with client({"link_signer": SIGNER, "unsubscribe_withdraw": WithdrawRecorder(error)}) as http:
        response = await http.post(
            f"/unsubscribe/{token}", content="List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
    assert response.status_code == status
    assert "db down" not in response.text
    if isinstance(error, Conflict):
        assert response.headers["retry-after"] == "60"


async def test_the_real_app_serves_the_page_and_gpc_json(
    gql: GraphQLClient,
) -> None:
    links: UnsubscribeLinks = UnsubscribeLinks(SIGNER, "http://testserver")
    headers = links.headers(CLAIMS)
    url = headers["List-Unsubscribe"].strip("<>")
    page = await gql.http.get(url)
    assert page.status_code == 200
    posted = await gql.http.post(url, content="List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert posted.status_code == 200  # no such purpose here: nothing left to unsubscribe from
    gpc = await gql.http.get("/.well-known/gpc.json")
    assert gpc.status_code == 200
    assert gpc.json() == {"gpc": True, "lastUpdate": "2026-11-29"}


# --- GPC middleware ----------------------------------------------------------------------------------


class FakeAuthentication:
    """Stands in for AuthenticationMiddleware: the principal from a test header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = dict(scope["headers"]).get(b"x-test-principal", b"").decode()
        kind, _, ident = who.partition(":")
        if kind == "subject":
            scope["state"]["principal"] = Principal(PrincipalKind.SUBJECT, id=ident)
        elif kind == "staff":
            scope["state"]["principal"] = Principal(
                PrincipalKind.STAFF, id=ident, roles=frozenset({Role.ADMIN})
            )
        else:
            scope["state"]["principal"] = Principal.anonymous()
        await self.app(scope, receive, send)


class GpcRecorder:
    def __init__(
        self,
        fail_first: bool = False,
        gate: asyncio.Event | None = None,
        first_error: Exception | None = None,
    ) -> None:
        self.calls: list[str] = []
        self.first_error = first_error or (
            RuntimeError("consent service unavailable") if fail_first else None
        )
        self.gate = gate

    async def __call__(self, subject_external_id: str) -> None:
        self.calls.append(subject_external_id)
        if self.gate is not None:
            await self.gate.wait()
        if self.first_error is not None and len(self.calls) == 1:
            raise self.first_error


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def gpc_stack(state: dict[str, Any], memo_size: int = 100) -> tuple[GpcMiddleware, ASGIApp]:
    inner = Starlette(routes=[Route("/", ok)])
    gpc = GpcMiddleware(inner, memo_size=memo_size)
    auth = FakeAuthentication(gpc)

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = dict(state)
        await auth(scope, receive, send)

    return gpc, with_state


async def send_requests(app: ASGIApp, requests: list[tuple[str, dict[str, str]]]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for who, headers in requests:
            response = await http.get("/", headers={"x-test-principal": who, **headers})
            assert response.text == "ok"


GPC = {"Sec-GPC": "1"}


async def test_gpc_from_a_signed_in_subject_is_recorded_once() -> None:
    recorder = GpcRecorder()
    gpc, app = gpc_stack({"record_gpc": recorder})
    await send_requests(
        app, [("subject:c-1", GPC), ("subject:c-1", GPC), ("subject:c-2", GPC), ("subject:c-1", GPC)]
    )
    await gpc.drain()
    assert sorted(recorder.calls) == ["c-1", "c-2"]


@pytest.mark.parametrize(
    ("who", "headers"),
    [
        ("subject:c-1", {}),
        ("subject:c-1", {"Sec-GPC": "0"}),
        ("subject:c-1", {"Sec-GPC": "true"}),
        ("anonymous:", GPC),
        ("staff:agent-1", GPC),
    ],
)
async def test_no_signal_or_no_subject_records_nothing(who: str, headers: dict[str, str]) -> None:
    recorder = GpcRecorder()
    gpc, app = gpc_stack({"record_gpc": recorder})
    await send_requests(app, [(who, headers)])
    await gpc.drain()
    assert recorder.calls == []


async def test_the_response_does_not_wait_for_the_recording() -> None:
    gate = asyncio.Event()
    recorder = GpcRecorder(gate=gate)
    gpc, app = gpc_stack({"record_gpc": recorder})
    await send_requests(app, [("subject:c-1", GPC)])  # returns although the recorder is still blocked
    gate.set()
    await gpc.drain()
    assert recorder.calls == ["c-1"]


async def test_a_failed_recording_is_logged_and_retried_on_a_later_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = GpcRecorder(fail_first=True)
    gpc, app = gpc_stack({"record_gpc": recorder})
    await send_requests(app, [("subject:c-1", GPC)])
    await gpc.drain()
    assert "recording a Global Privacy Control signal failed" in caplog.text
    await send_requests(app, [("subject:c-1", GPC), ("subject:c-1", GPC)])
    await gpc.drain()
    assert recorder.calls == ["c-1", "c-1"]


async def test_a_subject_held_by_an_import_is_a_warning_without_a_traceback_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = GpcRecorder(first_error=HeldTooLong())
    gpc, app = gpc_stack({"record_gpc": recorder})
    await send_requests(app, [("subject:c-1", GPC)])
    await gpc.drain()
    [record] = [r for r in caplog.records if "Global Privacy Control" in r.getMessage()]
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    await send_requests(app, [("subject:c-1", GPC), ("subject:c-1", GPC)])
    await gpc.drain()
    assert recorder.calls == ["c-1", "c-1"]


async def test_the_memo_is_bounded() -> None:
    recorder = GpcRecorder()
    gpc, app = gpc_stack({"record_gpc": recorder}, memo_size=2)
    await send_requests(app, [(f"subject:c-{n}", GPC) for n in (1, 2, 3, 1)])
    await gpc.drain()
    assert sorted(recorder.calls) == ["c-1", "c-1", "c-2", "c-3"]


async def test_without_a_recorder_the_middleware_stays_out_of_the_way() -> None:
    gpc, app = gpc_stack({})
    await send_requests(app, [("subject:c-1", GPC)])
    await gpc.drain()
