"""HMAC-SHA256 signatures of the gateway's calls to downstream systems (and of their callbacks to it).

The signed message is `<timestamp>.<body>`: the decimal Unix time of the `X-DSR-Timestamp` header, a dot,
and the exact body bytes. `X-DSR-Signature` is `v1=<hex digest>`. A receiver recomputes it with the shared
secret, compares in constant time, and refuses a timestamp further than the tolerance from its clock (a
replayed request is then useless after a few minutes).
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-DSR-Timestamp"
SIGNATURE_HEADER = "X-DSR-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """A callback that must not be trusted; `reason` says why (for logs, not for the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signature_headers(secret: bytes, body: bytes, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise InvalidSignature unless `signature` signs `body` at `timestamp` within the tolerance of `now`."""
    if not timestamp or not signature:
        raise InvalidSignature(f"the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not a Unix time in seconds") from None
    if abs(now - sent_at) > tolerance_seconds:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is more than {tolerance_seconds} seconds from now")
    # Several signatures (comma separated) let a sender rotate its secret without a gap.
    expected = sign(secret, sent_at, body)
    if not any(hmac.compare_digest(expected, candidate.strip()) for candidate in signature.split(",")):
        raise InvalidSignature("the signature does not match the body")
