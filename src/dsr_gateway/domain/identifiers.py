"""Numeric ids and cursor positions that clients send back: only what a 64-bit column can hold."""

from __future__ import annotations

MAX_ID = 2**63 - 1  # BIGINT on PostgreSQL, INTEGER on SQLite


def parse_id(text: str) -> int | None:
    """The non-negative integer written in ASCII digits, or None (`²`, `-1`, `1_000`, 2**63 ...)."""
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def fits_id(value: int) -> bool:
    return 0 <= value <= MAX_ID
