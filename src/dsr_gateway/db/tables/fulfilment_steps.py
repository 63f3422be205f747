"""Fulfilment steps (one per system per phase of an approved request) and legal holds placed by agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class FulfilmentStepRow(SQLModel, table=True):
    __tablename__ = "fulfilment_step"
    __table_args__ = (
        # One step per system per phase: planning twice (a replayed approval) cannot duplicate work.
        UniqueConstraint("request_id", "phase", "system", name="uq_fulfilment_step_request_phase_system"),
        # The claim query: due steps by status and time.
        Index("ix_fulfilment_step_due", "status", "next_attempt_at"),
        # Expired leases of running steps.
        Index("ix_fulfilment_step_lease", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(
        sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=False, index=True)
    )
    phase: str = Field(max_length=16)
    system: str = Field(max_length=64)
    stage: int = 0
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    # Which claim owns a RUNNING step: a worker whose lease expired cannot overwrite its successor.
    claim_token: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))


class RequestLegalHoldRow(SQLModel, table=True):
    __tablename__ = "request_legal_hold"
    __table_args__ = (
        UniqueConstraint("request_id", "category", name="uq_request_legal_hold_request_category"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(
        sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=False, index=True)
    )
    category: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_by: str = Field(max_length=300)
    placed_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
