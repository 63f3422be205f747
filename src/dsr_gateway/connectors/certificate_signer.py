"""Ed25519 signatures of erasure certificates as compact JWS (`alg` EdDSA), with PyJWT and cryptography.

Anyone with the gateway's public key (`public_key_pem()`, published as the docs describe) can verify a
certificate with `verify_certificate(token, public_key_pem)`, or with any JOSE library that knows EdDSA.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
TOKEN_TYPE = "dsr-erasure-certificate+jwt"  # noqa: S105 (a JWS "typ", not a secret)


class SigningKeyError(ValueError):
    pass


def load_signing_key(value: str) -> Ed25519PrivateKey:
    """A PEM private key, or base64 of PKCS#8 DER, or base64 of the 32 raw bytes."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key: Any = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = base64.b64decode(text, validate=True)
            if len(raw) == 32:
                key = Ed25519PrivateKey.from_private_bytes(raw)
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SigningKeyError(
            "DSR_SIGNING_KEY is not an Ed25519 private key (PEM, base64 PKCS#8 DER, or base64 of 32 bytes)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("DSR_SIGNING_KEY must be an Ed25519 key")
    return key


def generate_signing_key() -> str:
    """A new key as base64 PKCS#8 DER, the form DSR_SIGNING_KEY takes in production."""
    der = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).rstrip(b"=").decode()


class Ed25519Signer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

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
