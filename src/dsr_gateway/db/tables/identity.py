"""Contact identities of requesters and their verification challenges.

Emails and phone numbers are stored only encrypted (AES-GCM, key from settings) next to a keyed HMAC
lookup hash; nothing here holds a contact detail in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Text
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class SubjectIdentityRow(SQLModel, table=True):
    __tablename__ = "subject_identity"

    id: int | None = Field(default=None, primary_key=True)
    subject_id: int | None = Field(default=None, foreign_key="subject.id", index=True)
    email_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    email_hash: str | None = Field(default=None, max_length=64, index=True)
    phone_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    phone_hash: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class VerificationChallengeRow(SQLModel, table=True):
    __tablename__ = "verification_challenge"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(
        sa_column=Column(String(32), ForeignKey("privacy_request.id"), nullable=False, unique=True)
    )
    code_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    attempts_left: int
    locked: bool = False
    sent_count: int = 1
    resend_available_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    verified_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
