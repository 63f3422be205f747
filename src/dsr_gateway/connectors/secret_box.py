"""Secrets we must be able to read back (webhook signing secrets), encrypted at rest.

The same AES-GCM box as contact details (connectors/crypto.py), under a key derived for this purpose.
"""

from __future__ import annotations

from dsr_gateway.connectors.crypto import CiphertextUnreadable, SealedBox

SecretUnreadable = CiphertextUnreadable

__all__ = ["SecretBox", "SecretUnreadable"]


class SecretBox(SealedBox):
    def __init__(self, encryption_key: str, purpose: str = "webhook-secret") -> None:
        super().__init__(encryption_key, f"secret-box/{purpose}")
