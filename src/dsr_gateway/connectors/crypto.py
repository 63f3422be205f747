"""Encryption at rest (AES-256-GCM) and keyed lookup hashes (HMAC-SHA256) for contact details.

Keys are derived from the settings' secrets with HKDF, so any long random string works as a key. Tokens
are `v1.<base64url(nonce + ciphertext)>`; the version prefix leaves room for key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PREFIX = "v1."
_NONCE_BYTES = 12


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


class AesGcmCipher:
    """The `Cipher` port: encrypt/decrypt contact details, and hash them for lookups."""

    def __init__(self, encryption_key: str, hmac_key: str) -> None:
        if len(encryption_key) < 16 or len(hmac_key) < 16:
            raise ValueError("DSR_ENCRYPTION_KEY and DSR_HMAC_KEY must each be at least 16 characters")
        self._aead = AESGCM(_derive(encryption_key, b"dsr-gateway contact encryption v1"))
        self._hmac_key = _derive(hmac_key, b"dsr-gateway lookup hash v1")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), b"dsr-contact")
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            raise ValueError("not a dsr-gateway ciphertext")
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :].encode())
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], b"dsr-contact").decode()
        except InvalidTag as exc:
            raise ValueError("the ciphertext was made with another key or was altered") from exc

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()
