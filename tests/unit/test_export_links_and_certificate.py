"""Download tokens (forged, tampered, expired) and the signed erasure certificate."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from dsr_gateway.connectors.certificate_signer import (
    CertificateSigner,
    SigningKeyInvalid,
    generate_signing_key,
    load_signing_key,
    verify_certificate,
)
from dsr_gateway.services.erasure_certificate import issue_certificate
from dsr_gateway.services.export_links import (
    ExpiredExportLink,
    InvalidExportLink,
    sign_export_token,
    verify_export_token,
)
from dsr_gateway.services.fulfilment_ports import ErasureAction, ErasureResult, FieldErasure, LegalHold

KEY = b"link-key"
EXPORT = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def test_a_genuine_token_names_its_export_until_it_expires() -> None:
    token = sign_export_token(KEY, EXPORT, NOW + timedelta(days=7))
    assert verify_export_token(KEY, token, NOW) == EXPORT
    assert verify_export_token(KEY, token, NOW + timedelta(days=7) - timedelta(seconds=1)) == EXPORT
    with pytest.raises(ExpiredExportLink, match="expired on 2026-01-17 12:00 UTC"):
        verify_export_token(KEY, token, NOW + timedelta(days=7))


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.replace(EXPORT, "f" * 32),  # another export
        lambda t: ".".join(
            [t.split(".")[0], str(int(t.split(".")[1]) + 86400), t.split(".")[2]]
        ),  # longer life
        lambda t: sign_export_token(b"other key", EXPORT, NOW + timedelta(days=7)),
        lambda t: "nonsense",
        lambda t: "../../etc/passwd",
        lambda t: t + ".x",
    ],
)
def test_a_forged_token_is_refused_whatever_its_date(forge: object) -> None:
    token = sign_export_token(KEY, EXPORT, NOW + timedelta(days=7))
    forged = forge(token)  # type: ignore[operator]
    with pytest.raises(InvalidExportLink):
        verify_export_token(KEY, forged, NOW)
    # An expired forgery is still a forgery: the signature is checked before the date.
    with pytest.raises(InvalidExportLink):
        verify_export_token(KEY, forged, NOW + timedelta(days=30))


RESULTS = [
    ErasureResult(
        "shop",
        (
            FieldErasure("customers", "email", ErasureAction.HASHED, 1, "contact"),
            FieldErasure("orders", "id", ErasureAction.KEPT, 0, "billing", "legal hold on billing: tax law"),
            FieldErasure("addresses", None, ErasureAction.DELETED, 2),
        ),
    ),
    ErasureResult("crm", (FieldErasure("tickets", None, ErasureAction.DELETED, 4),)),
]


def test_a_certificate_verifies_with_the_public_key_and_lists_every_action() -> None:
    signer = CertificateSigner(load_signing_key(generate_signing_key()))
    claims, token = issue_certificate(
        signer, "req-1", "https://gateway.example", NOW, RESULTS, [LegalHold("billing", "tax law")]
    )
    assert token.count(".") == 2
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    verified = verify_certificate(token, signer.public_key_pem())
    assert verified == claims
    shop, crm = verified["systems"]  # type: ignore[misc]
    assert shop["summary"] == {"deleted": 1, "hashed": 1, "kept": 1}
    assert shop["items"][1]["reason"] == "legal hold on billing: tax law"
    assert crm["complete"] is True
    assert verified["legal_holds"] == [
        {"category": "billing", "reason": "tax law", "source": "configuration"}
    ]
    assert "jane" not in token.lower()


def test_a_tampered_or_foreign_certificate_is_refused() -> None:
    signer = CertificateSigner(load_signing_key(generate_signing_key()))
    _, token = issue_certificate(signer, "req-1", "gw", NOW, RESULTS)
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["systems"] = []
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        signer.verify(f"{header}.{forged_payload}.{signature}")
    other = CertificateSigner(load_signing_key(generate_signing_key()))
    with pytest.raises(jwt.InvalidSignatureError):
        other.verify(token)
    hs256 = jwt.encode(
        {"iat": 1}, "x" * 32, algorithm="HS256", headers={"typ": "dsr-erasure-certificate+jwt"}
    )
    with pytest.raises(jwt.InvalidAlgorithmError):
        signer.verify(hs256)


@pytest.mark.parametrize(
    "value",
    [
        generate_signing_key(),  # base64 PKCS#8 DER
        base64.b64encode(bytes(range(32))).decode(),  # base64 of 32 raw bytes (the dev form)
    ],
)
def test_signing_keys_load_in_each_documented_form(value: str) -> None:
    signer = CertificateSigner(load_signing_key(value))
    assert signer.public_key_pem().startswith("-----BEGIN PUBLIC KEY-----")
    pem = CertificateSigner(load_signing_key(value))
    assert pem.key_id == signer.key_id


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_signing_key_is_refused_with_the_setting_name(value: str) -> None:
    with pytest.raises(SigningKeyInvalid, match="DSR_SIGNING_KEY"):
        load_signing_key(value)
