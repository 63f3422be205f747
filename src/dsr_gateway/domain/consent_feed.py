"""Cursors of the consent ledger: a history read newest first, and a changes feed read in commit order.

A feed position is (transaction order, event id). On PostgreSQL the transaction order is the writing
transaction's id, and the feed only returns events of transactions older than the oldest one still open
in the gateway's database (db/repositories/consent.py `PG_SETTLED`), so an event that commits late can
never appear behind a position already handed out. On SQLite writers are serialised, ids are in commit
order and the transaction order is 0.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.identifiers import fits_id

MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True, order=True)
class FeedPosition:
    tx_order: int = 0
    event_id: int = 0


START = FeedPosition(0, 0)


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, field: str, prefix: str) -> list[int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, *numbers = text.split(":")
        values = [int(n) for n in numbers]
    except (ValueError, binascii.Error, UnicodeDecodeError):
        values, kind = [], ""
    if kind != prefix or not values or not all(fits_id(v) for v in values):
        raise ValidationFailed.single(field, "not a cursor of this list; pass an endCursor you were given")
    return values


def feed_cursor(position: FeedPosition) -> str:
    return _encode(f"f:{position.tx_order}:{position.event_id}")


def parse_feed_cursor(cursor: str, field: str = "since") -> FeedPosition:
    """An empty string starts from the beginning of the ledger."""
    if cursor == "":
        return START
    values = _decode(cursor, field, "f")
    if len(values) != 2:
        raise ValidationFailed.single(field, "not a cursor of this list; pass an endCursor you were given")
    return FeedPosition(values[0], values[1])


def history_cursor(event_id: int) -> str:
    return _encode(f"h:{event_id}")


def parse_history_cursor(cursor: str, field: str = "after") -> int:
    values = _decode(cursor, field, "h")
    if len(values) != 1:
        raise ValidationFailed.single(field, "not a cursor of this list; pass an endCursor you were given")
    return values[0]


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.single("first", f"ask for 1 to {MAX_PAGE} events")
    return first
