"""Encryption at rest (AES-256-GCM) and keyed lookup hashes (HMAC-SHA256).

Every use gets its own key, derived with HKDF from the settings' secret and the use's name, and the name
is bound as associated data too, so ciphertexts of one use never decrypt as another's. Stored form:
`v1.<base64url(nonce + ciphertext)>`; the version prefix leaves room for key rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PREFIX = "v1."
_NONCE_BYTES = 12


class CiphertextUnreadable(ValueError):
    """The stored value was not made with this key and purpose, or was altered."""


def derive_key(secret: str, purpose: str) -> bytes:
    info = f"dsr-gateway {purpose} v1".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


class SealedBox:
    """AES-256-GCM under a key derived for one purpose."""

    def __init__(self, secret: str, purpose: str) -> None:
        if not secret:
            raise ValueError("an encryption key is required (DSR_ENCRYPTION_KEY)")
        self._aead = AESGCM(derive_key(secret, purpose))
        self._aad = purpose.encode()

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._aad)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(_PREFIX):
            raise CiphertextUnreadable("not a dsr-gateway ciphertext")
        try:
            raw = base64.urlsafe_b64decode(stored[len(_PREFIX) :].encode())
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._aad).decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise CiphertextUnreadable("the ciphertext was made with another key or was altered") from exc


class AesGcmCipher:
    """The `Cipher` port: encrypt/decrypt contact details, and hash them for lookups."""

    def __init__(self, encryption_key: str, hmac_key: str) -> None:
        if len(encryption_key) < 16 or len(hmac_key) < 16:
            raise ValueError("DSR_ENCRYPTION_KEY and DSR_HMAC_KEY must each be at least 16 characters")
        self._box = SealedBox(encryption_key, "contact encryption")
        self._hmac_key = derive_key(hmac_key, "lookup hash")

    def encrypt(self, plaintext: str) -> str:
        return self._box.encrypt(plaintext)

    def decrypt(self, token: str) -> str:
        return self._box.decrypt(token)

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()
