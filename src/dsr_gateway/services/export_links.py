"""Signed, expiring download tokens for access packages: `<export id>.<expiry>.<signature>`.

The signature is HMAC-SHA256, keyed with the gateway's DSR_HMAC_KEY, over `export:<export id>.<expiry>`
(expiry in Unix seconds), base64url without padding. A token is checked for its signature first (a forgery
is refused whatever its date), then for its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

from dsr_gateway.domain.errors import DomainError

EXPORT_ID = re.compile(r"^[0-9a-f]{32}$")
EXPIRY = re.compile(r"[0-9]{1,12}")  # Unix seconds


class InvalidExportLink(DomainError):
    def __init__(self) -> None:
        super().__init__("This download link is not valid. Use the link exactly as it was sent to you.")


class ExpiredExportLink(DomainError):
    def __init__(self, expired_at: datetime) -> None:
        self.expired_at = expired_at
        super().__init__(
            f"This download link expired on {expired_at:%Y-%m-%d %H:%M} UTC. "
            "Ask for a new one by making a new access request."
        )


def _signature(key: bytes, export_id: str, expiry: int) -> str:
    digest = hmac.new(key, f"export:{export_id}.{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_export_token(key: bytes, export_id: str, expires_at: datetime) -> str:
    if not EXPORT_ID.match(export_id):
        raise ValueError("an export id is 32 lowercase hex digits")
    expiry = int(expires_at.timestamp())
    return f"{export_id}.{expiry}.{_signature(key, export_id, expiry)}"


def verify_export_token(key: bytes, token: str, now: datetime) -> str:
    """The export id of a genuine, unexpired token; InvalidExportLink or ExpiredExportLink otherwise."""
    parts = token.split(".")
    # ASCII digits of a sane length only: str.isdigit() also accepts '²', which int() refuses.
    if len(parts) != 3 or not EXPORT_ID.match(parts[0]) or not EXPIRY.fullmatch(parts[1]):
        raise InvalidExportLink()
    export_id, expiry_text, signature = parts
    expiry = int(expiry_text)
    if not hmac.compare_digest(_signature(key, export_id, expiry), signature):
        raise InvalidExportLink()
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise ExpiredExportLink(expires_at)
    return export_id
