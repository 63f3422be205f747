"""Consent reviews: when a grant falls due for reconfirmation, and the cursor of the review list."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.identifiers import fits_id
from dsr_gateway.domain.purposes import Purpose

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_DUE_WITHIN_DAYS = 3660


@dataclass(frozen=True, slots=True)
class ReviewCursor:
    given_at: datetime
    subject_id: int
    topic: str
    channel: str

    def encode(self) -> str:
        raw = json.dumps([self.given_at.isoformat(), self.subject_id, self.topic, self.channel])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> ReviewCursor:
        try:
            given, subject, topic, channel = json.loads(
                base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            )
            given_at, subject_id = datetime.fromisoformat(given), int(subject)
            if given_at.utcoffset() is None or not fits_id(subject_id):
                raise ValueError("a review cursor holds an aware datetime and a 64-bit subject id")
            return cls(given_at, subject_id, str(topic), str(channel))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise ValidationFailed.single(
                "after", "not a cursor of this list; start again without it"
            ) from exc


def review_period(purpose: Purpose) -> timedelta:
    """The purpose's reconfirmation period; a purpose without one has nothing to review."""
    if purpose.reconfirm_after_days is None:
        raise ValidationFailed.single(
            "purpose", f"{purpose.key!r} has no reconfirmation period (reconfirmAfterDays); nothing falls due"
        )
    return timedelta(days=purpose.reconfirm_after_days)


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed.single("first", f"ask for 1 to {MAX_PAGE} at a time")
    return first


def due_within(days: int) -> timedelta:
    if not 0 <= days <= MAX_DUE_WITHIN_DAYS:
        raise ValidationFailed.single("dueWithinDays", f"give 0 to {MAX_DUE_WITHIN_DAYS} days")
    return timedelta(days=days)
