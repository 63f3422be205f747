"""An HTTP system in `mode = "callback"`: it answers 202 to the gateway's erasure call and later POSTs its
answer, signed with the shared secret, to `POST /callbacks/fulfilment/{request_id}/{step}`; the step then
completes, and the worker completes the request. On both databases."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.connectors.http_signing import signature_headers
from tests.support.app import agent_token
from tests.support.downstream import SECRET, Crm
from tests.support.fulfilment_factories import (
    Gateway,
    approve,
    forward_to,
    fulfilment_settings,
    gateway,
    shop,
    shop_env,
    submit_for_jane,
    write_systems_file,
)
from tests.support.shop import shop_postgres_url as shop_postgres_url

__all__ = ["shop"]

STATUS = """query($id: ID!) { privacyRequest(id: $id) {
  status version history { action actorKind }
  fulfilment { system phase status attempts finishedAt }
  erasureCertificate { claims }
} }"""


@pytest.fixture
def settings(database_url: str, tmp_path: Path, shop: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Any:
    shop_env(monkeypatch, shop)
    return fulfilment_settings(database_url, write_systems_file(tmp_path, mode="callback"), tmp_path)


@dataclass
class CallbackCrm:
    """The CRM in callback mode: it erases at once but answers 202, keeping the answer it will post later."""

    crm: Crm = field(default_factory=Crm)
    erasures: list[dict[str, Any]] = field(default_factory=list)  # the gateway's calls, as received
    answers: list[bytes] = field(default_factory=list)  # what the CRM would have answered synchronously

    def handler(self) -> Any:
        forward = forward_to(self.crm.app())

        async def handle(request: httpx.Request) -> httpx.Response:
            response = await forward(request)
            if not request.url.path.endswith("/erasure") or response.status_code != 200:
                return response
            call = json.loads(request.content)
            self.erasures.append(call)
            # The answer it will post later names the call it answers (the callback contract).
            answer = {
                **json.loads(await response.aread()),
                "request_id": call["request_id"],
                "step": call["step"],
            }
            self.answers.append(json.dumps(answer).encode())
            return httpx.Response(202)

        return handle


async def status_of(gw: Gateway, request_id: str) -> dict[str, Any]:
    return dict((await gw.gql(STATUS, {"id": request_id}, token=agent_token()))["privacyRequest"])


def crm_step(found: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in found["fulfilment"] if s["system"] == "crm")


async def post_callback(
    gw: Gateway,
    path: str,
    body: bytes,
    *,
    secret: bytes = SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    signed = signature_headers(secret, body, time.time()) if headers is None else headers
    return await gw.gql.http.post(path, content=body, headers={"Content-Type": "application/json", **signed})


async def waiting_erasure(gw: Gateway, downstream: CallbackCrm) -> tuple[str, str]:
    """An approved ERASURE of Jane's, run by the worker: the CRM step waits. Its id and callback path."""
    request = await submit_for_jane(gw.gql, "ERASURE", {"all": True})
    await approve(gw.gql, request["id"])
    await gw.run_worker()
    found = await status_of(gw, request["id"])
    assert found["status"] == "IN_PROGRESS", found["history"]
    assert crm_step(found)["status"] == "WAITING"
    assert crm_step(found)["finishedAt"] is None
    [call] = downstream.erasures
    assert call["request_id"] == request["id"]
    assert call["step"] == "erase.crm"
    url = httpx.URL(call["callback_url"])
    assert url.path == f"/callbacks/fulfilment/{request['id']}/erase.crm"
    return request["id"], url.path


async def test_a_signed_callback_completes_the_step_once_and_the_worker_completes_the_request(
    settings: Any,
) -> None:
    downstream = CallbackCrm()
    async with gateway(settings, downstream.handler()) as gw:
        request_id, path = await waiting_erasure(gw, downstream)
        assert [t for t in downstream.crm.tickets if t["customer"] == "cust-1"] == []
        steps = {
            (s["phase"], s["system"]): s["status"] for s in (await status_of(gw, request_id))["fulfilment"]
        }
        assert steps[("CERTIFICATE", "*")] == "PENDING"  # blocked until every erase step is DONE
        answer = downstream.answers[0]

        recorded = await post_callback(gw, path, answer)
        assert recorded.status_code == 200, recorded.text
        assert recorded.json() == {"status": "recorded"}
        found = await status_of(gw, request_id)
        assert crm_step(found)["status"] == "DONE"
        assert crm_step(found)["finishedAt"]
        assert found["status"] == "IN_PROGRESS"  # the certificate step is still to run

        await gw.run_worker()
        completed = await status_of(gw, request_id)
        assert completed["status"] == "COMPLETED", completed["fulfilment"]
        assert {s["status"] for s in completed["fulfilment"]} == {"DONE"}
        systems = {s["system"]: s for s in completed["erasureCertificate"]["claims"]["systems"]}
        assert set(systems) == {"shop", "crm", "gateway"}
        assert "deleted" in json.dumps(systems["crm"])  # the callback's answer is what was certified

        again = await post_callback(gw, path, answer)
        assert again.status_code == 200, again.text
        assert again.json() == {"status": "already recorded"}
        await gw.run_worker()
        after = await status_of(gw, request_id)
    assert after == completed
    assert [e["action"] for e in after["history"]].count("COMPLETE") == 1
    assert len(downstream.erasures) == 1  # the CRM was called once


def stale(body: bytes) -> dict[str, str]:
    return signature_headers(SECRET, body, time.time() - 3600)


def altered(body: bytes) -> dict[str, str]:
    return signature_headers(SECRET, body + b" ", time.time())


@pytest.mark.parametrize(
    ("case", "secret", "headers"),
    [
        ("wrong secret", b"not-the-shared-secret", None),
        ("no signature headers", SECRET, lambda body: {}),
        ("signed an hour ago", SECRET, stale),
        ("signature of another body", SECRET, altered),
        (
            "timestamp not a number",
            SECRET,
            lambda body: {"X-DSR-Timestamp": "soon", "X-DSR-Signature": "v1=0"},
        ),
    ],
)
async def test_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(
    settings: Any, case: str, secret: bytes, headers: Any
) -> None:
    downstream = CallbackCrm()
    async with gateway(settings, downstream.handler()) as gw:
        request_id, path = await waiting_erasure(gw, downstream)
        before = await status_of(gw, request_id)
        body = downstream.answers[0]
        refused = await post_callback(
            gw, path, body, secret=secret, headers=None if headers is None else headers(body)
        )
        assert refused.status_code == 401, case
        assert refused.json()["error"] == "unauthorized"
        await gw.run_worker()
        assert await status_of(gw, request_id) == before
        assert crm_step(before)["status"] == "WAITING"


@pytest.mark.parametrize(
    ("case", "make_path"),
    [
        ("unknown request", lambda rid: "/callbacks/fulfilment/no-such-request/erase.crm"),
        ("unknown system", lambda rid: f"/callbacks/fulfilment/{rid}/erase.billing"),
        ("a SQL system (no callbacks)", lambda rid: f"/callbacks/fulfilment/{rid}/erase.shop"),
        ("a phase the request has not", lambda rid: f"/callbacks/fulfilment/{rid}/notify.crm"),
        ("not a step key", lambda rid: f"/callbacks/fulfilment/{rid}/crm"),
    ],
)
async def test_a_callback_for_an_unknown_step_is_not_found(settings: Any, case: str, make_path: Any) -> None:
    downstream = CallbackCrm()
    async with gateway(settings, downstream.handler()) as gw:
        request_id, _path = await waiting_erasure(gw, downstream)
        before = await status_of(gw, request_id)
        path = make_path(request_id)
        # A well-formed answer for the step the path names, which does not exist (or takes no callback).
        named = {
            **json.loads(downstream.answers[0]),
            "request_id": path.split("/")[-2],
            "step": path.split("/")[-1],
        }
        missing = await post_callback(gw, path, json.dumps(named).encode())
        assert missing.status_code == 404, case
        assert missing.json()["error"] == "not_found"
        assert await status_of(gw, request_id) == before


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"results"', b"null", b"\xff\xfe"])
async def test_a_signed_body_that_is_not_a_json_object_is_a_bad_request(settings: Any, body: bytes) -> None:
    downstream = CallbackCrm()
    async with gateway(settings, downstream.handler()) as gw:
        request_id, path = await waiting_erasure(gw, downstream)
        before = await status_of(gw, request_id)
        bad = await post_callback(gw, path, body)
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"] == "bad_request"
        assert await status_of(gw, request_id) == before


async def test_a_signed_answer_that_breaks_the_contract_is_unprocessable(settings: Any) -> None:
    downstream = CallbackCrm()
    async with gateway(settings, downstream.handler()) as gw:
        request_id, path = await waiting_erasure(gw, downstream)
        before = await status_of(gw, request_id)
        body = json.dumps(
            {
                "results": [{"table": "tickets", "action": "shred"}],
                "request_id": request_id,
                "step": "erase.crm",
            }
        ).encode()
        refused = await post_callback(gw, path, body)
        assert refused.status_code == 422, refused.text
        assert "shred" in refused.json()["message"]
        assert await status_of(gw, request_id) == before


async def test_an_answer_for_one_request_cannot_complete_another(settings: Any) -> None:
    """The signature covers the body; the body names its request and step, so a replay elsewhere fails."""
    downstream = CallbackCrm()
    async with gateway(settings, downstream.handler()) as gw:
        first = await submit_for_jane(gw.gql, "ERASURE", {"all": True})
        second = await submit_for_jane(gw.gql, "ERASURE", {"all": True})
        for request in (first, second):
            await approve(gw.gql, request["id"])
        await gw.run_worker()
        answers = {json.loads(a)["request_id"]: a for a in downstream.answers}
        assert set(answers) == {first["id"], second["id"]}
        before = await status_of(gw, second["id"])
        replayed = await post_callback(
            gw, f"/callbacks/fulfilment/{second['id']}/erase.crm", answers[first["id"]]
        )
        assert replayed.status_code == 403
        assert "request_id and step" in replayed.json()["message"]
        assert await status_of(gw, second["id"]) == before
        assert crm_step(before)["status"] == "WAITING"
