"""The audit trail through the app: JWKS, auditVerification, checkpoints, receipts listed and verified."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from dsr_gateway.app import controller_from, signer_from, utc_now
from dsr_gateway.cli import main
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.purposes import ConsentMechanism, LegalBasis, PurposeCategory
from dsr_gateway.domain.receipts import ConsentEventKind, PurposeState, ReceiptInput, ReceiptPurpose
from dsr_gateway.services.receipts import ReceiptService, new_receipt_id
from tests.support.app import GraphQLClient, admin_token, agent_token, make_settings, subject_token

VERIFY = """{ auditVerification { ok chainsChecked eventsChecked checkpointsChecked brokenChains
  firstBreak { chain eventId sequence problem detail } checkpointIssues { checkpointId problem chain } } }"""
CHECKPOINT = """mutation { createAuditCheckpoint { __typename
  ... on CreateAuditCheckpointSuccess { checkpoint { id chains root keyId jws } }
  ... on UserError { message } } }"""
RECEIPTS = "{ me { consentReceipts { receiptId createdAt jws } } }"


async def test_jwks_verifies_checkpoints(gql: GraphQLClient) -> None:
    response = await gql.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    assert [k["kty"] for k in jwks["keys"]] == ["OKP"]
    denied = await gql(CHECKPOINT, token=agent_token())
    assert denied["createAuditCheckpoint"]["__typename"] == "PermissionDeniedError"
    created = (await gql(CHECKPOINT, token=admin_token()))["createAuditCheckpoint"]["checkpoint"]
    key = jwt.PyJWKSet.from_dict(jwks)[created["keyId"]]
    claims = jwt.decode(created["jws"], key, algorithms=["EdDSA"])
    assert claims["root"] == created["root"]
    report = (await gql(VERIFY, token=agent_token()))["auditVerification"]
    assert report == {
        "ok": True,
        "chainsChecked": 0,
        "eventsChecked": 0,
        "checkpointsChecked": 1,
        "brokenChains": 0,
        "firstBreak": None,
        "checkpointIssues": [],
    }


async def test_audit_verification_is_for_staff(gql: GraphQLClient) -> None:
    response = await gql.post(VERIFY, token=subject_token())
    assert response.json()["errors"][0]["message"].startswith("Only staff")


async def issue_receipt(database_url: str, external_id: str) -> str:
    """A receipt issued as the changes feed's follower issues them: inside its unit of work, committed."""
    settings = make_settings(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    receipts = ReceiptService(
        lambda: SqlUnitOfWork(factory), signer_from(settings), controller_from(settings), utc_now
    )
    receipt_id = new_receipt_id()
    data = ReceiptInput(
        receipt_id=receipt_id,
        subject_external_id=external_id,
        timestamp=utc_now(),
        event=ConsentEventKind.GIVEN,
        collection_method="api",
        jurisdiction="GDPR",
        notice_version=1,
        policy_url="https://shop.example/privacy",
        purposes=(
            ReceiptPurpose(
                "news",
                "News",
                PurposeCategory.MARKETING,
                LegalBasis.CONSENT,
                ConsentMechanism.OPT_IN,
                PurposeState.GRANTED,
            ),
        ),
    )
    try:
        async with SqlUnitOfWork(factory) as uow:
            subject = await uow.subjects.get_or_create(external_id, utc_now())
            await receipts.issue_many(uow, [(subject.id, data)])
            await uow.commit()
    finally:
        await engine.dispose()
    return receipt_id


async def test_subjects_list_their_receipts_and_anyone_verifies_them(
    gql: GraphQLClient, database_url: str
) -> None:
    receipt_id = await issue_receipt(database_url, "customer-1")
    mine = (await gql(RECEIPTS, token=subject_token("customer-1")))["me"]["consentReceipts"]
    assert [r["receiptId"] for r in mine] == [receipt_id]
    others = (await gql(RECEIPTS, token=subject_token("customer-2")))["me"]["consentReceipts"]
    assert others == []
    jwks = (await gql.http.get("/.well-known/jwks.json")).json()
    token = mine[0]["jws"]
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key, algorithms=["EdDSA"])
    assert claims["consentReceiptID"] == receipt_id
    assert claims["piiPrincipalId"] == "customer-1"
    query = "query($id: String!) { consentReceipt(receiptId: $id) { receiptId } }"
    other = await gql(query, {"id": receipt_id}, token=subject_token("customer-2"))
    assert other["consentReceipt"] is None
    staff = await gql(query, {"id": receipt_id}, token=agent_token())
    assert staff["consentReceipt"] == {"receiptId": receipt_id}


def test_cli_audit_verify_and_checkpoint(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSR_DATABASE_URL", database_url)
    assert main(["audit", "checkpoint"]) == 0
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "Checkpoint " in out
    assert "OK: every chain and checkpoint verifies." in out
