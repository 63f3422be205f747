"""A privacy request as stored, its queue filter and cursor, and the identity-verification rules.

`requests.py` holds the vocabulary (types, statuses, details) and `workflow.py` the one transition table;
this module holds the record the services load and save, and the pure rules of the one-time code.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.requests import RequestStatus, RequestType
from dsr_gateway.domain.sla_rules import Jurisdiction


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    id: str
    type: RequestType
    status: RequestStatus
    jurisdiction: Jurisdiction
    subject_id: int | None
    subject_external_id: str | None
    identity_id: int | None
    details: dict[str, Any]
    received_at: datetime
    idempotency_key: str | None
    duplicate_of: str | None
    assignee: str | None
    submitted_by: str
    version: int
    due_at: datetime
    original_due_at: datetime
    acknowledge_by: datetime | None
    sla_status: str
    sla_rule_id: str
    sla_inputs: dict[str, Any]
    clock_started_at: datetime
    extended: bool
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def evolve(self, **changes: Any) -> PrivacyRequest:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The agent queue's filter; every field narrows, None means any."""

    statuses: tuple[RequestStatus, ...] = ()
    types: tuple[RequestType, ...] = ()
    jurisdictions: tuple[Jurisdiction, ...] = ()
    sla_statuses: tuple[str, ...] = ()
    assignee: str | None = None
    unassigned: bool = False
    due_before: datetime | None = None
    subject_id: int | None = None


@dataclass(frozen=True, slots=True)
class QueueCursor:
    """Position in the queue order (due_at, received_at, id); opaque to clients."""

    due_at: datetime
    received_at: datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.due_at.isoformat(), self.received_at.isoformat(), self.id])
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, cursor: str, field_name: str = "after") -> QueueCursor:
        try:
            due, received, request_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            due_at, received_at = datetime.fromisoformat(due), datetime.fromisoformat(received)
            if due_at.utcoffset() is None or received_at.utcoffset() is None:
                raise ValueError("a queue cursor holds aware datetimes")
            return cls(due_at, received_at, str(request_id))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed.single(
                field_name, "Not a cursor from this list; pass an endCursor you received."
            ) from exc


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: tuple[PrivacyRequest, ...]
    has_next_page: bool


# --- contact details -----------------------------------------------------------------------------------

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}")
_PHONE = re.compile(r"\+?[0-9 ().-]{6,24}")


def normalise_email(email: str, field_name: str = "email") -> str:
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValidationFailed.single(field_name, "Give an email address such as name@example.com.")
    return value


def normalise_phone(phone: str, field_name: str = "phone") -> str:
    value = phone.strip()
    if not _PHONE.fullmatch(value):
        raise ValidationFailed.single(field_name, "Give a phone number such as +44 20 7946 0000.")
    return ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)


def mask_email(email: str) -> str:
    """`j***@e***.com`: enough for a person to recognise, never enough to use."""
    local, _, domain = email.partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***.{tld}"


@dataclass(frozen=True, slots=True)
class Identity:
    id: int
    subject_id: int | None
    email: str | None
    phone: str | None


# --- the one-time code ----------------------------------------------------------------------------------

CODE_LENGTH = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_COOLDOWN = timedelta(seconds=60)
MAX_SENDS = 5


class VerificationOutcome(StrEnum):
    VERIFIED = "VERIFIED"
    WRONG_CODE = "WRONG_CODE"
    EXPIRED = "EXPIRED"
    LOCKED = "LOCKED"
    ALREADY_VERIFIED = "ALREADY_VERIFIED"


@dataclass(frozen=True, slots=True)
class Challenge:
    request_id: str
    code_hash: str
    expires_at: datetime
    attempts_left: int
    locked: bool
    sent_count: int
    resend_available_at: datetime
    verified_at: datetime | None
    created_at: datetime

    @classmethod
    def issue(cls, request_id: str, code_hash: str, now: datetime) -> Challenge:
        return cls(
            request_id=request_id,
            code_hash=code_hash,
            expires_at=now + CODE_TTL,
            attempts_left=MAX_ATTEMPTS,
            locked=False,
            sent_count=1,
            resend_available_at=now + RESEND_COOLDOWN,
            verified_at=None,
            created_at=now,
        )

    def attempt(self, matches: bool, now: datetime) -> tuple[Challenge, VerificationOutcome]:
        """One try of a code. A wrong code costs an attempt; the last wrong one locks the challenge."""
        if self.verified_at is not None:
            return self, VerificationOutcome.ALREADY_VERIFIED
        if self.locked:
            return self, VerificationOutcome.LOCKED
        if now >= self.expires_at:
            return self, VerificationOutcome.EXPIRED
        if matches:
            return replace(self, verified_at=now), VerificationOutcome.VERIFIED
        left = self.attempts_left - 1
        updated = replace(self, attempts_left=left, locked=left <= 0)
        return updated, (VerificationOutcome.LOCKED if left <= 0 else VerificationOutcome.WRONG_CODE)

    def resend_refusal(self, now: datetime) -> str | None:
        """Why a new code may not be sent now, or None when it may."""
        if self.verified_at is not None:
            return "This request is already verified."
        if self.locked:
            return "Too many wrong codes: this request is locked. Submit a new request."
        if self.sent_count >= MAX_SENDS:
            return f"A code was already sent {MAX_SENDS} times; submit a new request."
        if now < self.resend_available_at:
            seconds = math.ceil((self.resend_available_at - now).total_seconds())
            return f"Wait {seconds} seconds before asking for another code."
        return None

    def reissue(self, code_hash: str, now: datetime) -> Challenge:
        return replace(
            self,
            code_hash=code_hash,
            expires_at=now + CODE_TTL,
            attempts_left=MAX_ATTEMPTS,
            sent_count=self.sent_count + 1,
            resend_available_at=now + RESEND_COOLDOWN,
        )


# --- the outbox -----------------------------------------------------------------------------------------


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"  # gave up after the last retry
    NO_ADDRESS = "NO_ADDRESS"  # nobody to send it to; staff must tell the subject another way


MAX_DELIVERY_ATTEMPTS = 8


# The wait after a failed send (domain.retry.backoff, no jitter): 30 s, 1 min, 2 min ... capped at 1 h.
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    kind: MessageKind
    request_id: str | None
    recipient: str | None  # decrypted only inside the sender; None in listings
    recipient_hint: str | None
    subject_line: str
    body: str
    template_data: dict[str, Any] = field(default_factory=dict)
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    created_at: datetime | None = None
    html: str | None = None
    language: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
