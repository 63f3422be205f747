"""Communication with subjects: contact details for consent messages, campaign sends, GPC signals, breaches.

Addresses are stored only encrypted (AES-GCM, key from settings), like the requesters' identities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class SubjectContactRow(SQLModel, table=True):
    """Where to write to a subject about their consents, and in which language (one row per subject)."""

    __tablename__ = "subject_contact"

    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), primary_key=True))
    email_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    email_hint: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=16)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class CampaignSendRow(SQLModel, table=True):
    """One reconfirmation reminder sent to a subject about a purpose: re-runs skip recent ones."""

    __tablename__ = "campaign_send"
    __table_args__ = (Index("ix_campaign_send_recent", "purpose_key", "subject_id", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(max_length=32)
    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), nullable=False))
    purpose_key: str = Field(sa_column=Column(String(63), ForeignKey("purpose.key"), nullable=False))
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    sent_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class GpcSignalRow(SQLModel, table=True):
    """A Global Privacy Control signal recorded for a subject and purpose (once), and any conflict."""

    __tablename__ = "gpc_signal"

    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), primary_key=True))
    purpose_key: str = Field(sa_column=Column(String(63), ForeignKey("purpose.key"), primary_key=True))
    event_id: int | None = None
    # The subject had explicitly opted in when the signal came: the opt-out is honoured, and they are told.
    conflict: bool = False
    granted_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class BreachNoticeRow(SQLModel, table=True):
    __tablename__ = "breach_notice"

    id: int | None = Field(default=None, primary_key=True)
    systems: list[str] = Field(sa_column=Column(JSON, nullable=False))
    data_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    details: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    recipients: int = 0
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class BreachRecipientRow(SQLModel, table=True):
    """That the notice was sent (queued) to this subject, and the outbox message that carries it."""

    __tablename__ = "breach_recipient"

    breach_id: int = Field(sa_column=Column(Integer, ForeignKey("breach_notice.id"), primary_key=True))
    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), primary_key=True, index=True))
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    sent_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
