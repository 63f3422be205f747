"""The gateway's Ed25519 signing key: compact JWS (EdDSA) with PyJWT, and its public JWK for JWKS.

PyJWT is already a dependency (it verifies the identity provider's tokens) and signs/verifies EdDSA with
`cryptography`; joserfc would add a second JOSE library for no gain here. Payloads are the RFC 8785
canonical JSON of the claims, so the signed bytes are reproducible; any JWS library can verify them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.api_jws import PyJWS

from dsr_gateway.domain.canonical_json import canonical_bytes
from dsr_gateway.services.audit_ports import SignatureInvalid

ALGORITHM = "EdDSA"
_jws = PyJWS()


class SigningKeyInvalid(ValueError):
    """DSR_SIGNING_KEY is neither base64 of a raw 32-byte Ed25519 key nor an Ed25519 PKCS8 PEM."""


def generate_signing_key() -> str:
    """A new key as DSR_SIGNING_KEY text: base64 of the raw 32-byte Ed25519 private key."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode("ascii")


def load_signing_key(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyInvalid(f"DSR_SIGNING_KEY is not a readable PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyInvalid("DSR_SIGNING_KEY must be an Ed25519 key (PKCS8 PEM)")
        return key
    alphabet = b"-_" if "-" in text or "_" in text else b"+/"
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningKeyInvalid("DSR_SIGNING_KEY is not base64") from exc
    if len(raw) == 32:
        return Ed25519PrivateKey.from_private_bytes(raw)
    try:
        # Base64 of PKCS#8 DER, as key tools often print it.
        der_key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyInvalid(
            f"DSR_SIGNING_KEY must decode to 32 raw bytes or PKCS#8 DER, not {len(raw)} other bytes"
        ) from exc
    if not isinstance(der_key, Ed25519PrivateKey):
        raise SigningKeyInvalid("DSR_SIGNING_KEY must be an Ed25519 key")
    return der_key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The OKP JWK (RFC 8037) with `kid` = its RFC 7638 thumbprint, `use` sig, `alg` EdDSA."""
    x = _b64url(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    required = {"crv": "Ed25519", "kty": "OKP", "x": x}
    return {**required, "kid": jwk_thumbprint(required), "use": "sig", "alg": ALGORITHM}


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace; base64url."""
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
    names = members[jwk["kty"]]
    text = json.dumps({n: jwk[n] for n in names}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(text.encode("utf-8")).digest())


class Ed25519Signer:
    """Signs with the current key; verifies with it or with retired public keys, chosen by `kid`."""

    def __init__(self, private_key: Ed25519PrivateKey, retired: tuple[Ed25519PublicKey, ...] = ()) -> None:
        self._private_key = private_key
        self._jwk = public_jwk(private_key.public_key())
        self._public_keys: dict[str, Ed25519PublicKey] = {self._jwk["kid"]: private_key.public_key()}
        for key in retired:
            self._public_keys[public_jwk(key)["kid"]] = key

    @classmethod
    def from_setting(cls, text: str) -> Ed25519Signer:
        return cls(load_signing_key(text))

    @property
    def key_id(self) -> str:
        return self._jwk["kid"]

    @property
    def public_jwk(self) -> Mapping[str, str]:
        return dict(self._jwk)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set served at /.well-known/jwks.json: the current key first, then retired ones."""
        keys = [dict(self._jwk)]
        keys += [public_jwk(k) for kid, k in self._public_keys.items() if kid != self.key_id]
        return {"keys": keys}

    def sign(self, claims: Mapping[str, object]) -> str:
        return _jws.encode(
            canonical_bytes(dict(claims)),
            self._private_key,
            algorithm=ALGORITHM,
            headers={"kid": self.key_id, "typ": "JWT"},
        )

    def verify(self, jws: str) -> dict[str, object]:
        try:
            header = jwt.get_unverified_header(jws)
            key = self._public_keys.get(str(header.get("kid")))
            if key is None:
                raise SignatureInvalid(f"signed by an unknown key (kid {header.get('kid')!r})")
            payload = _jws.decode(jws, key, algorithms=[ALGORITHM])
            claims = json.loads(payload)
        except (jwt.PyJWTError, ValueError) as exc:
            raise SignatureInvalid(f"the signature does not verify: {exc}") from exc
        if not isinstance(claims, dict):
            raise SignatureInvalid("the signed payload is not a JSON object")
        return claims
