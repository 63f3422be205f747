"""Who read whose personal data: one row per subject (or request) read in one GraphQL operation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class PersonalDataAccessRow(SQLModel, table=True):
    """Append-only. Written by staff and API client reads; a subject reading itself is not recorded."""

    __tablename__ = "personal_data_access"
    __table_args__ = (
        Index("ix_personal_data_access_subject", "subject_external_id", "id"),
        Index("ix_personal_data_access_request", "request_id", "id"),
        Index("ix_personal_data_access_occurred_at", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    actor_kind: str = Field(max_length=16)  # STAFF or API_CLIENT
    actor_id: str = Field(max_length=255)
    operation: str = Field(max_length=100)  # the GraphQL operation name, or "anonymous"
    what: str = Field(max_length=100)  # the field read, e.g. "subject.consents", "consentCheck"
    subject_external_id: str | None = Field(default=None, max_length=255)
    request_id: str | None = Field(default=None, max_length=32)
