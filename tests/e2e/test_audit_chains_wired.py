"""The real event tables chained: tampering with stored consent and request events is detected by
`dsr-gateway audit verify` and by the auditVerification query, on both databases; setConsents and
withdrawConsent issue signed receipts that verify with pyjwt against the published key."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from dsr_gateway import cli
from dsr_gateway.db.engine import make_engine
from tests.support.accountability_factories import Live
from tests.support.app import TEST_SIGNING_KEY, GraphQLClient, admin_token, agent_token, subject_token
from tests.support.consent_factories import choice, seed_catalogue, set_consents, withdraw
from tests.support.followups import follow_up
from tests.support.request_factories import APPROVE, ASSIGN, COMPLETE, act, create_request

VERIFY = """{ auditVerification { ok chainsChecked eventsChecked brokenChains
  firstBreak { chain eventId sequence problem detail } checkpointIssues { checkpointId problem chain } } }"""
CHECKPOINT = "mutation { createAuditCheckpoint { __typename } }"
RECEIPTS = "{ me { consentReceipts { receiptId jws } } }"


async def seed(gql: GraphQLClient) -> tuple[str, str]:
    """Three consent events for c1, one for c2, a request with three events; (c1's chain, the request's)."""
    await seed_catalogue(gql)
    await set_consents(gql, choice(), choice("analytics", False), token=subject_token("c1"))
    await withdraw(gql, token=subject_token("c1"), subjectId="c1", purpose="marketing_email")
    await set_consents(gql, choice(), token=subject_token("c2"))
    request = await create_request(gql, "c1")
    await act(gql, ASSIGN, request["id"], assignee="agent-1")
    await act(gql, APPROVE, request["id"])
    await act(gql, COMPLETE, request["id"])
    return "c1", request["id"]


async def sql(database_url: str, *statements: str, **params: Any) -> list[Any]:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            result: list[Any] = []
            for statement in statements:
                found = await connection.execute(text(statement), params)
                result = list(found.all()) if found.returns_rows else []
            return result
    finally:
        await engine.dispose()


async def subject_chain(database_url: str, external_id: str) -> str:
    rows = await sql(database_url, "SELECT id FROM subject WHERE external_id = :e", e=external_id)
    return f"consent:{rows[0][0]}"


async def event_id(database_url: str, table: str, column: str, key: Any, sequence: int) -> int:
    rows = await sql(
        database_url, f"SELECT id FROM {table} WHERE {column} = :k AND sequence = :s", k=key, s=sequence
    )
    return int(rows[0][0])


def swap(table: str, column: str) -> list[str]:
    """Exchange the places of events 1 and 2 of one chain (through a free sequence number)."""
    return [
        f"UPDATE {table} SET sequence = -1 WHERE {column} = :k AND sequence = 1",
        f"UPDATE {table} SET sequence = 1 WHERE {column} = :k AND sequence = 2",
        f"UPDATE {table} SET sequence = 2 WHERE {column} = :k AND sequence = -1",
    ]


CE, RE = "consent_event", "privacy_request_event"
CHANGE_CONSENT = f"UPDATE {CE} SET action = 'GRANT' WHERE subject_id = :k AND sequence = 3"
CHANGE_REQUEST = f"UPDATE {RE} SET actor_id = 'someone-else' WHERE request_id = :k AND sequence = 2"
# name -> (chain, statements, the broken event's sequence before / after tampering, problem)
TAMPERING: dict[str, tuple[str, list[str], int, int, str]] = {
    "consent value changed": ("consent", [CHANGE_CONSENT], 3, 3, "HASH_MISMATCH"),
    "consent event deleted": (
        "consent", [f"DELETE FROM {CE} WHERE subject_id = :k AND sequence = 2"], 3, 3, "SEQUENCE_GAP"
    ),
    "consent events reordered": ("consent", swap(CE, "subject_id"), 2, 1, "PREV_HASH_MISMATCH"),
    "request value changed": ("request", [CHANGE_REQUEST], 2, 2, "HASH_MISMATCH"),
    "request event deleted": (
        "request", [f"DELETE FROM {RE} WHERE request_id = :k AND sequence = 1"], 2, 2, "SEQUENCE_GAP"
    ),
    "request events reordered": ("request", swap(RE, "request_id"), 2, 1, "PREV_HASH_MISMATCH"),
}  # fmt: skip


async def run_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, *argv: str
) -> tuple[int, str]:
    for name in [n for n in os.environ if n.startswith("DSR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSR_DATABASE_URL", database_url)
    monkeypatch.setenv("DSR_SIGNING_KEY", TEST_SIGNING_KEY)
    buffer = io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(buffer):
            return cli.main(list(argv))

    return await asyncio.to_thread(call), buffer.getvalue()


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_tampering_is_detected_by_the_query_and_the_command(
    case: str, live: Live, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gql = live.gql
    subject, request_id = await seed(gql)
    clean = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert clean["ok"], clean
    assert clean["chainsChecked"] == 3  # c1, c2, the request
    assert clean["eventsChecked"] == 3 + 1 + 3
    code, out = await run_cli(monkeypatch, tmp_path, database_url, "audit", "verify")
    assert code == 0, out

    kind, statements, before, after, problem = TAMPERING[case]
    if kind == "consent":
        chain = await subject_chain(database_url, subject)
        key: Any = int(chain.split(":")[1])
        table, column = CE, "subject_id"
    else:
        chain, key, table, column = f"request:{request_id}", request_id, RE, "request_id"
    broken_id = await event_id(database_url, table, column, key, before)
    await sql(database_url, *statements, k=key)

    report = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert report["ok"] is False
    assert report["brokenChains"] == 1
    first = report["firstBreak"]
    assert (first["chain"], first["problem"]) == (chain, problem), first
    assert (first["eventId"], first["sequence"]) == (str(broken_id), after)
    code, out = await run_cli(monkeypatch, tmp_path, database_url, "audit", "verify")
    assert code == 1
    assert f"BROKEN chain {chain}" in out
    assert problem in out


async def test_a_cut_tail_is_caught_by_the_signed_checkpoint(live: Live, database_url: str) -> None:
    gql = live.gql
    subject, _ = await seed(gql)
    assert (await gql(CHECKPOINT, token=admin_token()))["createAuditCheckpoint"]["__typename"] == (
        "CreateAuditCheckpointSuccess"
    )
    chain = await subject_chain(database_url, subject)
    await sql(database_url, f"DELETE FROM {CE} WHERE subject_id = :k AND sequence = 3", k=int(chain[8:]))
    report = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert report["firstBreak"] is None  # the chain itself is consistent ...
    assert report["checkpointIssues"] == [  # ... but shorter than what was signed
        {
            "checkpointId": report["checkpointIssues"][0]["checkpointId"],
            "problem": "TRUNCATED",
            "chain": chain,
        }
    ]


async def test_the_worker_checkpoints_only_when_a_chain_moved(live: Live) -> None:
    gql, audit = live.gql, live.state["services"].audit
    assert await audit.scheduled_checkpoint() is None  # nothing to sign yet
    await seed(gql)
    first = await audit.scheduled_checkpoint()
    assert first is not None
    assert len(first.heads) == 3
    assert await audit.scheduled_checkpoint() is None
    await set_consents(gql, choice(), token=subject_token("c3"))
    second = await audit.scheduled_checkpoint()
    assert second is not None
    assert len(second.heads) == 4


def decoder(jwks: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    keys = jwt.PyJWKSet.from_dict(jwks)

    def decode(token: str) -> dict[str, Any]:
        key = keys[jwt.get_unverified_header(token)["kid"]]
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=["EdDSA"])
        return claims

    return decode


async def test_set_consents_and_withdraw_issue_receipts_that_verify_with_pyjwt(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    granted = await set_consents(
        gql, choice(), choice(topic="promotions", channel="EMAIL"), token=subject_token("c1")
    )
    assert granted["__typename"] == "SetConsentsSuccess"
    refused = await set_consents(gql, choice("no_such_purpose"), token=subject_token("c1"))
    assert refused["__typename"] == "ValidationError"  # nothing recorded, no receipt
    withdrawn = await withdraw(gql, token=subject_token("c1"), subjectId="c1", purpose="marketing_email")
    # The receipts follow from the ledger after each change commits (the worker's consent follow-ups).
    assert (await gql(RECEIPTS, token=subject_token("c1")))["me"]["consentReceipts"] == []
    assert (await follow_up(database_url)).receipts == 2
    assert (await follow_up(database_url)).events == 0  # followed up once
    receipts = (await gql(RECEIPTS, token=subject_token("c1")))["me"]["consentReceipts"]
    assert len(receipts) == 2
    decode = decoder((await gql.http.get("/.well-known/jwks.json")).json())
    by_event = {c["event"]["type"]: c for c in (decode(r["jws"]) for r in receipts)}
    given, gone = by_event["GIVEN"], by_event["WITHDRAWN"]
    assert given["piiPrincipalId"] == "c1"
    assert given["version"] == "KI-CR-v1.1.0"
    assert given["jurisdiction"] == "EU"
    assert given["notice"]["version"] == 1
    assert given["event"]["ledger"]["eventIds"] == [e["id"] for e in granted["events"]]
    assert given["event"]["ledger"]["chain"] == await subject_chain(database_url, "c1")
    (purpose,) = given["services"][0]["purposes"]
    assert (purpose["purposeId"], purpose["state"], purpose["consentType"]) == (
        "marketing_email", "GRANTED", "EXPLICIT",
    )  # fmt: skip
    assert purpose["topics"] == ["promotions"]
    assert purpose["channels"] == ["EMAIL"]
    assert gone["state"] == {"marketing_email": "WITHDRAWN"}
    assert gone["event"]["ledger"]["eventIds"] == [e["id"] for e in withdrawn["events"]]
    assert {r["receiptId"] for r in receipts} == {given["consentReceiptID"], gone["consentReceiptID"]}
