"""The signing key (formats, JWK thumbprint) and consent receipts verified by a standard JWS library."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dsr_gateway.connectors.signing import (
    Ed25519Signer,
    SigningKeyInvalid,
    generate_signing_key,
    jwk_thumbprint,
    load_signing_key,
)
from dsr_gateway.domain.purposes import ConsentMechanism, LegalBasis, PurposeCategory
from dsr_gateway.domain.receipts import (
    ConsentEventKind,
    Controller,
    PurposeState,
    ReceiptInput,
    ReceiptPurpose,
    build_receipt,
    missing_members,
)
from dsr_gateway.services.audit_ports import SignatureInvalid

CONTROLLER = Controller("Shop Ltd", "DPO", "dpo@shop.example", {"addressCountry": "BE"}, "+32 2 000 00 00")


def receipt_input(**overrides: object) -> ReceiptInput:
    values: dict[str, object] = {
        "receipt_id": "c1befd3e-b7e5-4ea6-8688-e9a565aade21",
        "subject_external_id": "customer-1",
        "timestamp": datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        "event": ConsentEventKind.GIVEN,
        "collection_method": "web form: preference centre",
        "jurisdiction": "GDPR",
        "notice_version": 3,
        "policy_url": "https://shop.example/privacy",
        "purposes": (
            ReceiptPurpose(
                "marketing_email",
                "Marketing emails",
                PurposeCategory.MARKETING,
                LegalBasis.CONSENT,
                ConsentMechanism.OPT_IN,
                PurposeState.GRANTED,
                ("2 - Contact",),
                ("Mailer Inc.",),
                topics=("promotions",),
                channels=("EMAIL",),
            ),
        ),
        "ledger_chain": "consent:1",
        "ledger_event_ids": ("41",),
    }
    values.update(overrides)
    return ReceiptInput(**values)  # type: ignore[arg-type]


def test_rfc7638_thumbprint_example() -> None:
    # RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_key_formats() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    kid = Ed25519Signer(key).key_id
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        pem.decode(),
    ):
        assert Ed25519Signer(load_signing_key(text)).key_id == kid


@pytest.mark.parametrize(
    "text", ["not base64!", base64.b64encode(b"short").decode(), "-----BEGIN PRIVATE KEY-----\nx\n"]
)
def test_bad_keys_are_refused(text: str) -> None:
    with pytest.raises(SigningKeyInvalid):
        load_signing_key(text)


def test_a_receipt_verifies_with_pyjwt_and_the_published_jwks() -> None:
    signer = Ed25519Signer.from_setting(generate_signing_key())
    token = signer.sign(build_receipt(receipt_input(), CONTROLLER, signer.public_jwk))
    jwks = json.loads(json.dumps(signer.jwks()))  # as served
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(token, key, algorithms=["EdDSA"])
    assert claims["version"] == "KI-CR-v1.1.0"
    assert claims["consentTimestamp"] == 1772355600
    assert claims["piiControllers"][0]["piiController"] == "Shop Ltd"
    purpose = claims["services"][0]["purposes"][0]
    assert purpose["purposeCategory"] == ["6 - Marketing"]
    assert purpose["consentType"] == "EXPLICIT"
    assert (purpose["thirdPartyDisclosure"], purpose["thirdPartyName"]) == (True, "Mailer Inc.")
    assert claims["notice"] == {"version": 3, "url": "https://shop.example/privacy"}
    assert claims["event"]["type"] == "GIVEN"
    assert claims["state"] == {"marketing_email": "GRANTED"}
    assert claims["publicKey"]["kid"] == signer.key_id
    assert missing_members(claims) == []
    assert signer.verify(token) == claims


def test_an_altered_receipt_or_another_key_does_not_verify() -> None:
    signer = Ed25519Signer.from_setting(generate_signing_key())
    token = signer.sign(build_receipt(receipt_input(), CONTROLLER))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["state"] = {"marketing_email": "WITHDRAWN"}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(SignatureInvalid):
        signer.verify(f"{header}.{forged}.{signature}")
    other = Ed25519Signer.from_setting(generate_signing_key())
    with pytest.raises(SignatureInvalid, match="unknown key"):
        other.verify(token)
    with pytest.raises(SignatureInvalid):
        signer.verify("not-a-jws")
