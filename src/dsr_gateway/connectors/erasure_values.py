"""What a masked or hashed field becomes. Both are idempotent: applying them twice changes nothing more."""

from __future__ import annotations

import hashlib
import hmac
import re

HASH_PREFIX = "hmac-sha256:"
MASK_PLACEHOLDER = re.compile(r"\{(first|last):(\d+)\}|\{domain\}")


def hash_value(key: bytes, value: str) -> str:
    """A keyed HMAC-SHA256: equal inputs stay linkable (for deduplication), but cannot be read back."""
    if value.startswith(HASH_PREFIX):
        return value
    return HASH_PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def mask_value(pattern: str, value: str) -> str:
    """`pattern` with {first:N}, {last:N} and {domain} (of an email) taken from `value`."""

    def keep(match: re.Match[str]) -> str:
        if match.group(0) == "{domain}":
            return value.rpartition("@")[2] if "@" in value else ""
        count = int(match.group(2))
        if count == 0:
            return ""
        return value[:count] if match.group(1) == "first" else value[-count:]

    return MASK_PLACEHOLDER.sub(keep, pattern)
