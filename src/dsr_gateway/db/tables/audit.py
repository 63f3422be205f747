"""Accountability records: signed checkpoints of chain heads, and signed consent receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class AuditCheckpointRow(SQLModel, table=True):
    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    # {chain_key: [sequence, hash]} for every chain at that moment.
    heads: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    root: str = Field(max_length=64)
    # SHA-256 of the previous checkpoint's JWS; unique, so two checkpoints never fork the sequence.
    prev_digest: str | None = Field(default=None, max_length=64, unique=True)
    jws: str = Field(sa_column=Column(Text, nullable=False))
    key_id: str = Field(max_length=64)


class ConsentReceiptRow(SQLModel, table=True):
    __tablename__ = "consent_receipt"
    __table_args__ = (Index("ix_consent_receipt_subject_created", "subject_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    receipt_id: str = Field(max_length=36, unique=True, index=True)  # the consentReceiptID (UUID)
    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), nullable=False))
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    jws: str = Field(sa_column=Column(Text, nullable=False))
