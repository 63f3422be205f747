"""How webhook deliveries are signed, and how a receiver checks them.

`X-DSR-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` with `X-DSR-Timestamp` in Unix
seconds. A receiver recomputes the HMAC over the raw body, compares in constant time, and refuses
timestamps too far from its clock (replays). Several `v1=` values separated by commas may be sent in
future, during a secret rotation; `verify_signature` accepts any one that matches.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str,
    timestamp_header: str,
    signature_header: str,
    body: bytes,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when the signature matches the body and the timestamp is within the tolerance."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in signature_header.split(","))
