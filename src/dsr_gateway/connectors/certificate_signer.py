"""Ed25519 signatures of erasure certificates as compact JWS (`alg` EdDSA).

The key is the gateway's one signing key (DSR_SIGNING_KEY, connectors/signing.py), and the `kid` is its
RFC 7638 thumbprint, so a certificate verifies against the key published at /.well-known/jwks.json, with
`verify_certificate(token, public_key_pem)` or any JOSE library that knows EdDSA.
"""

from __future__ import annotations

from collections.abc import Mapping

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dsr_gateway.connectors.signing import (
    SigningKeyInvalid,
    generate_signing_key,
    load_signing_key,
    public_jwk,
)

ALGORITHM = "EdDSA"
TOKEN_TYPE = "dsr-erasure-certificate+jwt"  # noqa: S105 (a JWS "typ", not a secret)

__all__ = [
    "CertificateSigner",
    "SigningKeyInvalid",
    "generate_signing_key",
    "load_signing_key",
    "public_key_pem",
    "verify_certificate",
]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class CertificateSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = public_jwk(self.public_key)["kid"]

    def sign(self, claims: Mapping[str, object]) -> str:
        headers = {"typ": TOKEN_TYPE, "kid": self.key_id}
        return jwt.encode(dict(claims), self._private_key, algorithm=ALGORITHM, headers=headers)

    def verify(self, token: str) -> dict[str, object]:
        return verify_certificate(token, self.public_key)

    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)


def verify_certificate(token: str, public_key: Ed25519PublicKey | str) -> dict[str, object]:
    """The certificate's claims when the signature is the gateway's; jwt.InvalidTokenError otherwise."""
    if isinstance(public_key, str):
        loaded = serialization.load_pem_public_key(public_key.encode())
        if not isinstance(loaded, Ed25519PublicKey):
            raise jwt.InvalidKeyError("the public key is not an Ed25519 key")
        public_key = loaded
    if jwt.get_unverified_header(token).get("typ") != TOKEN_TYPE:
        raise jwt.InvalidTokenError("this token is not an erasure certificate")
    claims: dict[str, object] = jwt.decode(
        token, public_key, algorithms=[ALGORITHM], options={"require": ["iat"]}
    )
    return claims
