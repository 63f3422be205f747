"""Every request type fulfilled end to end by the worker's step runner, through GraphQL, against the sample
shop (a real second database), the CRM downstream and the gateway's own records, on both databases."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.connectors.certificate_signer import verify_certificate
from dsr_gateway.connectors.erasure_values import HASH_PREFIX
from tests.support.app import agent_token, client_token, subject_token
from tests.support.downstream import Crm
from tests.support.factories import create_purpose
from tests.support.fulfilment_factories import (
    Handler,
    approve,
    forward_to,
    fulfilment_settings,
    gateway,
    shop,
    shop_env,
    submit_for_jane,
    write_systems_file,
)
from tests.support.request_factories import RETRY, act
from tests.support.shop import addresses, customers, newsletter, orders
from tests.support.shop import shop_postgres_url as shop_postgres_url

__all__ = ["shop"]

STATUS = """query($id: ID!) { privacyRequest(id: $id) {
  status version history { action actorKind reason data }
  fulfilment { system phase status attempts lastError finishedAt }
  recipientsNotified { system recipients purposes told status notifiedAt }
  erasureCertificate { token claims issuedAt }
  legalHolds { category reason placedBy }
  exportPackage { url expiresAt downloadCount }
} }"""
PLACE_HOLD = """mutation($id: ID!, $category: String!, $reason: String!) {
  placeLegalHold(id: $id, category: $category, reason: $reason) {
    __typename ... on UserError { message } } }"""


@pytest.fixture
def settings(database_url: str, tmp_path: Path, shop: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Any:
    shop_env(monkeypatch, shop)
    return fulfilment_settings(database_url, write_systems_file(tmp_path), tmp_path)


async def status_of(gql: Any, request_id: str) -> dict[str, Any]:
    return dict((await gql(STATUS, {"id": request_id}, token=agent_token()))["privacyRequest"])


async def rows(engine: AsyncEngine, table: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [dict(r._mapping) for r in await connection.execute(select(table).order_by(table.c.id))]


@pytest.mark.parametrize("request_type", ["ACCESS", "PORTABILITY"])
async def test_access_packages_exactly_the_subjects_rows_and_the_link_downloads(
    settings: Any, shop: AsyncEngine, request_type: str
) -> None:
    crm = Crm()
    async with gateway(settings, forward_to(crm.app())) as gw:
        gql = gw.gql
        other = await submit_for_jane(gql, "ACCESS", {})  # a second request of hers: in her records
        request = await submit_for_jane(gql, request_type, {})
        await approve(gql, request["id"])
        await gw.run_worker()
        found = await status_of(gql, request["id"])
        assert found["status"] == "COMPLETED"
        assert [(s["phase"], s["system"], s["status"]) for s in found["fulfilment"]] == [
            ("PACKAGE", "*", "DONE")
        ]
        package = found["exportPackage"]
        assert package["downloadCount"] == 0
        response = await gql.http.get(httpx.URL(package["url"]).path)
        assert response.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        shop_customers = json.loads(archive.read("shop/customers.json"))
        assert [c["external_ref"] for c in shop_customers] == ["cust-1"]
        assert [o["total_cents"] for o in json.loads(archive.read("shop/orders.json"))] == [1999, 500]
        assert {t["customer"] for t in json.loads(archive.read("crm/tickets.json"))} == {"cust-1"}
        mine = {r["id"] for r in json.loads(archive.read("gateway/privacy_requests.json"))}
        assert mine == {request["id"], other["id"]}
        assert "John" not in archive.read("shop/customers.csv").decode()
        # The subject and an export:read client see the package; the completion message carries the link.
        for token in (subject_token("cust-1"), client_token("export:read")):
            query = "query($id: ID!) { exportPackage(requestId: $id) { url downloadCount } }"
            seen = (await gql(query, {"id": request["id"]}, token=token))["exportPackage"]
            assert seen["downloadCount"] == 1
        assert (await gql("query($id: ID!) { exportPackage(requestId: $id) { url } }", {"id": request["id"]},
                          token=subject_token("cust-2")))["exportPackage"] is None  # fmt: skip
        outbox = await gql(
            "query($id: ID) { outboxMessages(requestId: $id) { kind body } }", {"id": request["id"]},
            token=agent_token(),
        )  # fmt: skip
        completed = [m for m in outbox["outboxMessages"] if m["kind"] == "COMPLETED"]
        assert len(completed) == 1
        assert package["url"] in completed[0]["body"]


async def test_erasure_erases_as_declared_keeps_holds_and_signs_a_certificate(
    settings: Any, shop: AsyncEngine
) -> None:
    crm = Crm()
    async with gateway(settings, forward_to(crm.app())) as gw:
        gql = gw.gql
        request = await submit_for_jane(gql, "ERASURE", {"all": True})
        placed = await gql(
            PLACE_HOLD, {"id": request["id"], "category": "marketing", "reason": "open complaint"},
            token=agent_token(),
        )  # fmt: skip
        assert placed["placeLegalHold"]["__typename"] == "PrivacyRequestSuccess"
        unknown = await gql(
            PLACE_HOLD, {"id": request["id"], "category": "shoes", "reason": "x"}, token=agent_token()
        )
        assert unknown["placeLegalHold"]["__typename"] == "ValidationError"
        await approve(gql, request["id"])
        late = await gql(
            PLACE_HOLD, {"id": request["id"], "category": "contact", "reason": "x"}, token=agent_token()
        )
        assert late["placeLegalHold"]["__typename"] == "ConflictError"
        await gw.run_worker()
        found = await status_of(gql, request["id"])
        assert found["status"] == "COMPLETED", found["history"]
        assert found["legalHolds"][0]["category"] == "marketing"

    jane, john = await rows(shop, customers)
    assert jane["email"].startswith(HASH_PREFIX)
    assert jane["name"] == "J***"
    assert jane["phone"] is None
    assert john["email"] == "john@example.com"
    assert john["name"] == "John Roe"
    assert [a["customer_id"] for a in await rows(shop, addresses)] == [2]  # Jane's deleted
    kept_orders = await rows(shop, orders)  # billing hold (configured): kept, label masked
    assert [(o["id"], o["shipping_name"]) for o in kept_orders] == [
        (10, "J***"),
        (11, "J***"),
        (12, "John Roe"),
    ]
    assert len(await rows(shop, newsletter)) == 3  # marketing hold (the agent's): kept
    assert all(t["customer"] != "cust-1" for t in crm.tickets)

    signer = gw.state["certificate_signer"]
    claims = verify_certificate(found["erasureCertificate"]["token"], signer.public_key_pem())
    assert claims["request_id"] == request["id"]
    assert {(h["category"], h["source"].split(" ")[0]) for h in claims["legal_holds"]} == {
        ("billing", "configuration"),
        ("marketing", "agent"),
    }
    assert {s["system"] for s in claims["systems"]} == {"shop", "crm", "gateway"}
    assert "jane" not in json.dumps(claims).lower()


async def test_rectification_applies_where_allowed_and_records_redacted_values(
    settings: Any, shop: AsyncEngine
) -> None:
    crm = Crm()
    async with gateway(settings, forward_to(crm.app())) as gw:
        gql = gw.gql
        changes = [
            {"field": "name", "currentValue": "Jane Doe", "requestedValue": "Jane Smith"},
            {"field": "phone", "currentValue": None, "requestedValue": "+44 20 7946 9999"},
        ]
        request = await submit_for_jane(gql, "RECTIFICATION", {"changes": changes})
        await approve(gql, request["id"])
        await gw.run_worker()
        found = await status_of(gql, request["id"])
    assert found["status"] == "COMPLETED"
    jane = (await rows(shop, customers))[0]
    assert (jane["name"], jane["phone"]) == ("Jane Smith", "+44 20 7946 9999")
    assert crm.contacts["cust-1"]["phone"] == "+44 20 7946 9999"
    complete = next(e for e in found["history"] if e["action"] == "COMPLETE")
    by = {(r["system"], r["table"], r["field"]): r for r in complete["data"]["rectifications"]}
    assert by[("shop", "customers", "name")]["old"] == ["Jane Doe"]
    assert by[("shop", "customers", "phone")]["old"] == ["[redacted]"]  # sensitive
    assert by[("crm", "contact", "phone")]["new"] == "[redacted]"
    assert by[("gateway", None, "name")]["outcome"] == "not_held"  # reported, not failed


async def test_revocation_records_the_ledger_and_tells_every_recipient(
    settings: Any, shop: AsyncEngine
) -> None:
    crm = Crm()
    async with gateway(settings, forward_to(crm.app())) as gw:
        gql = gw.gql
        await create_purpose(gql, key="newsletter", title="Newsletter")
        request = await submit_for_jane(gql, "CONSENT_REVOCATION", {"purposes": ["newsletter"]})
        await approve(gql, request["id"])
        await gw.run_worker()
        found = await status_of(gql, request["id"])
        assert found["status"] == "COMPLETED", found["fulfilment"]
        told = {r["system"]: r for r in found["recipientsNotified"]}
        assert set(told) == {"shop", "crm"}
        assert told["shop"]["told"]
        assert told["crm"]["told"]
        assert told["crm"]["notifiedAt"]
        assert told["shop"]["recipients"] == [
            "Parcel carriers (name and address, for delivery)",
            "Payment provider",
        ]
        events = await gql(
            'query { consentEvents(subjectId: "cust-1") { edges { node { action method purpose } } } }',
            token=agent_token(),
        )
        nodes = [e["node"] for e in events["consentEvents"]["edges"]]
        assert nodes
        assert all(n["method"] == "AGENT" and n["purpose"] == "newsletter" for n in nodes)
    assert [n["opted_in"] for n in await rows(shop, newsletter)] == [False, False, True]
    assert any(c["path"] == "/dsr/consent" and c["change"] == "withdrawn" for c in crm.calls)


def failing_erasure(crm: Crm, failures: int | None) -> tuple[Handler, list[str]]:
    """The CRM, whose erasure endpoint answers 503 `failures` times (None: always)."""
    forward, calls = forward_to(crm.app()), []

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/erasure"):
            calls.append(request.headers["Idempotency-Key"])
            if failures is None or len(calls) <= failures:
                return httpx.Response(503, text="maintenance")
        return await forward(request)

    return handle, calls


async def test_a_downstream_that_fails_twice_then_succeeds_completes(settings: Any) -> None:
    handler, calls = failing_erasure(Crm(), failures=2)
    async with gateway(settings, handler) as gw:
        request = await submit_for_jane(gw.gql, "ERASURE", {"all": True})
        await approve(gw.gql, request["id"])
        await gw.run_worker()
        found = await status_of(gw.gql, request["id"])
    assert found["status"] == "COMPLETED"
    crm_step = next(s for s in found["fulfilment"] if s["system"] == "crm")
    assert crm_step["attempts"] == 3
    assert crm_step["status"] == "DONE"
    assert calls == [f"{request['id']}:erase.crm"] * 3  # the same idempotency key every time


async def test_a_downstream_that_always_fails_ends_failed_and_retry_resumes_only_that_step(
    settings: Any, shop: AsyncEngine
) -> None:
    crm = Crm()
    broken = {"on": True}
    handler, _calls = failing_erasure(crm, failures=None)
    forward = forward_to(crm.app())

    async def switchable(request: httpx.Request) -> httpx.Response:
        return await (handler if broken["on"] else forward)(request)

    async with gateway(settings, switchable) as gw:
        gql = gw.gql
        request = await submit_for_jane(gql, "ERASURE", {"all": True})
        await approve(gql, request["id"])
        await gw.run_worker(passes=5)
        found = await status_of(gql, request["id"])
        assert found["status"] == "FAILED"
        assert "COMPLETE" not in [e["action"] for e in found["history"]]
        fail = next(e for e in found["history"] if e["action"] == "FAIL")
        assert fail["actorKind"] == "SYSTEM"
        assert "crm" in fail["reason"]
        assert "503" in fail["reason"]
        steps = {s["system"]: s for s in found["fulfilment"]}
        assert steps["crm"]["status"] == "FAILED"
        assert steps["crm"]["attempts"] == 3
        assert "503" in steps["crm"]["lastError"]
        assert steps["shop"]["status"] == "DONE"
        assert steps["*"]["status"] == "PENDING"

        broken["on"] = False
        retried = await act(gql, RETRY, request["id"], expectedVersion=found["version"])
        assert retried["__typename"] == "PrivacyRequestSuccess"
        await gw.run_worker()
        found = await status_of(gql, request["id"])
    assert found["status"] == "COMPLETED"
    steps = {s["system"]: s for s in found["fulfilment"]}
    assert steps["shop"]["attempts"] == 1  # done once, not again
    assert steps["crm"]["attempts"] == 1
    assert steps["crm"]["status"] == "DONE"
