"""Privacy-rights requests: the request, its history, clock pauses, SLA alerts.

Identities, verification challenges and the outbox live in `identity.py` and `outbox.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class PrivacyRequestRow(SQLModel, table=True):
    __tablename__ = "privacy_request"
    __table_args__ = (
        # The agent queue: ordered by deadline, then receipt, then id (the cursor's keys).
        Index("ix_privacy_request_queue", "due_at", "received_at", "id"),
        # The sweep: open requests by stored SLA status nearing their deadline.
        Index("ix_privacy_request_sweep", "sla_status", "due_at"),
        # Duplicate detection: an open request of the same type for the same subject or identity.
        Index("ix_privacy_request_subject_type", "subject_id", "type", "status"),
        Index("ix_privacy_request_identity_type", "identity_id", "type", "status"),
        # The compliance report: requests received, and closed, in a period.
        Index("ix_privacy_request_received_at", "received_at"),
        Index("ix_privacy_request_closed_at", "closed_at"),
    )

    # A random public id (uuid hex): ids are shown to anonymous submitters and must not be guessable.
    id: str = Field(sa_column=Column(String(32), primary_key=True))
    type: str = Field(max_length=32, index=True)
    status: str = Field(max_length=32, index=True)
    jurisdiction: str = Field(max_length=16, index=True)
    subject_id: int | None = Field(default=None, foreign_key="subject.id")
    identity_id: int | None = Field(default=None, foreign_key="subject_identity.id")
    details: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    # Scoped by the submitter (see the intake service), so one client's key never finds another's request.
    idempotency_key: str | None = Field(default=None, max_length=400, unique=True)
    duplicate_of: str | None = Field(
        default=None, sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=True)
    )
    assignee: str | None = Field(default=None, max_length=255, index=True)
    submitted_by: str = Field(max_length=300)
    version: int = 1
    # The clock: the instants, the stored status the sweep keeps fresh, and how the date was made.
    due_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    original_due_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    acknowledge_by: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    sla_status: str = Field(max_length=16, index=True)
    sla_rule_id: str = Field(max_length=64)
    sla_inputs: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    clock_started_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    extended: bool = False
    closed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class PrivacyRequestEventRow(SQLModel, table=True):
    __tablename__ = "privacy_request_event"
    __table_args__ = (
        Index("ix_privacy_request_event_request", "request_id", "id"),
        # The request's hash chain (docs/audit.md), and the report's count of extensions.
        Index("uq_privacy_request_event_chain", "request_id", "sequence", unique=True),
        Index("ix_privacy_request_event_action", "action", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=False))
    action: str = Field(max_length=32)
    from_status: str = Field(max_length=32)
    to_status: str = Field(max_length=32)
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=255)
    occurred_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Tamper evidence (db/repositories/chain_sealing.py): place in the request's chain, hashes.
    sequence: int | None = None
    prev_hash: str | None = Field(default=None, max_length=128)
    hash: str | None = Field(default=None, max_length=128)


class RequestPauseRow(SQLModel, table=True):
    __tablename__ = "request_pause"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(
        sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=False, index=True)
    )
    started_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))


class SlaAlertRow(SQLModel, table=True):
    """One alert per request and kind (AT_RISK, OVERDUE): the sweep may run any number of times."""

    __tablename__ = "sla_alert"
    __table_args__ = (UniqueConstraint("request_id", "kind", name="uq_sla_alert_request_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=False))
    kind: str = Field(max_length=16)
    due_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    raised_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False, index=True))
