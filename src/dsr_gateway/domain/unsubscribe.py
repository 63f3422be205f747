"""Signed links sent to subjects: what an unsubscribe or a reconfirmation link claims, and why one fails.

The signing itself lives in connectors/link_signing.py; this module holds the claims, their byte
encoding (inside the signed part of the token) and the typed refusals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from dsr_gateway.domain.errors import DomainError

NONE_LENGTH = 0xFFFF
FIELD_MAX = 0xFFFE


class LinkType(IntEnum):
    """Signed into every token, so that one kind of link can never be used as another."""

    UNSUBSCRIBE = 1
    RECONFIRM = 2


@dataclass(frozen=True, slots=True)
class UnsubscribeClaims:
    subject_external_id: str
    purpose: str
    topic: str | None = None
    channel: str | None = None

    def fields(self) -> tuple[str | None, ...]:
        return (self.subject_external_id, self.purpose, self.topic, self.channel)


@dataclass(frozen=True, slots=True)
class ReconfirmClaims:
    subject_external_id: str
    purpose: str

    def fields(self) -> tuple[str | None, ...]:
        return (self.subject_external_id, self.purpose)


class InvalidLink(DomainError):
    """A link that cannot be acted on; `reason` says which rule refused it."""

    reason = "INVALID"

    def __init__(self, message: str = "This link is not valid. Use the latest link we sent you.") -> None:
        super().__init__(message)


class LinkMalformed(InvalidLink):
    reason = "MALFORMED"


class LinkForged(InvalidLink):
    """The signature does not match: altered, made up, or signed with a key we no longer hold."""

    reason = "FORGED"


class LinkWrongType(InvalidLink):
    """Authentic, but made for another use (an unsubscribe link presented as a reconfirmation link)."""

    reason = "WRONG_TYPE"


class LinkExpired(InvalidLink):
    reason = "EXPIRED"

    def __init__(self) -> None:
        super().__init__("This link has expired. Use the latest message we sent you, or sign in.")


class LinkMismatch(InvalidLink):
    """Authentic, but for another subject or purpose than the one it was presented for."""

    reason = "MISMATCH"


def encode_fields(fields: Sequence[str | None]) -> bytes:
    """Length-prefixed UTF-8 fields (2 bytes big-endian each; 0xFFFF marks an absent field)."""
    out = bytearray()
    for value in fields:
        if value is None:
            out += NONE_LENGTH.to_bytes(2, "big")
            continue
        raw = value.encode()
        if len(raw) > FIELD_MAX:
            raise ValueError("a link field is too long")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def decode_fields(data: bytes, count: int) -> tuple[str | None, ...]:
    """The inverse of encode_fields; LinkMalformed unless exactly `count` fields fill `data`."""
    fields: list[str | None] = []
    position = 0
    try:
        for _ in range(count):
            if position + 2 > len(data):
                raise LinkMalformed()
            length = int.from_bytes(data[position : position + 2], "big")
            position += 2
            if length == NONE_LENGTH:
                fields.append(None)
                continue
            if position + length > len(data):
                raise LinkMalformed()
            fields.append(data[position : position + length].decode())
            position += length
    except UnicodeDecodeError as exc:
        raise LinkMalformed() from exc
    if position != len(data):
        raise LinkMalformed()
    return tuple(fields)
