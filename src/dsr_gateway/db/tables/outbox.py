"""Messages to send, written in the same transaction as what caused them, and their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    # The sender's claim: pending messages whose next attempt is due.
    __table_args__ = (Index("ix_outbox_claim", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    request_id: str | None = Field(
        default=None,
        sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=True, index=True),
    )
    recipient_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recipient_hint: str | None = Field(default=None, max_length=64)
    subject_line: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    # The HTML part, the template language chosen, extra mail headers (List-Unsubscribe on marketing).
    html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    language: str | None = Field(default=None, max_length=16)
    headers: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The subject a consent-area message is about (request messages name the request instead).
    subject_id: int | None = Field(default=None, foreign_key="subject.id", index=True)
    template_data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    logged_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False, index=True))


class OutboxDeliveryRow(SQLModel, table=True):
    __tablename__ = "outbox_delivery"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    attempt: int
    attempted_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    succeeded: bool
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
