"""Secrets we must be able to read back (webhook signing secrets), encrypted at rest with AES-GCM.

The key is derived from `DSR_ENCRYPTION_KEY` for this one use, so the same setting can serve other
encryptions without their ciphertexts being interchangeable. Stored form: `v1.<base64url(nonce|ct|tag)>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1."
NONCE_BYTES = 12


class SecretUnreadable(ValueError):
    """The stored secret was not made with this key (or was altered)."""


class SecretBox:
    def __init__(self, encryption_key: str, purpose: str = "webhook-secret") -> None:
        if not encryption_key:
            raise ValueError("an encryption key is required (DSR_ENCRYPTION_KEY)")
        derived = hmac.new(
            encryption_key.encode(), f"dsr-gateway/secret-box/{purpose}".encode(), hashlib.sha256
        )
        self._aead = AESGCM(derived.digest())
        self._aad = purpose.encode()

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._aad)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise SecretUnreadable("unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("the secret cannot be decrypted with this key") from exc
