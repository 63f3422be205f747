"""Purposes and privacy notices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class PurposeBase(SQLModel):
    key: str = Field(max_length=63, unique=True, index=True)
    title: str = Field(max_length=200)
    description: str
    legal_basis: str = Field(max_length=32)
    mechanism: str = Field(max_length=16)
    category: str = Field(max_length=32)
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    topics: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reconfirm_after_days: int | None = None
    gpc_opt_out: bool = False
    last_material_version: int | None = None
    version: int = 1


class PurposeRow(PurposeBase, table=True):
    __tablename__ = "purpose"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class PrivacyNoticeRow(SQLModel, table=True):
    __tablename__ = "privacy_notice"

    # Versions are 1, 2, 3 ...; the primary key makes a second publisher of the same number fail.
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    summary: str
    policy_url: str | None = Field(default=None, max_length=2000)
    data_categories: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    translations: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    published_by: str = Field(max_length=200)


class NoticePurposeRow(SQLModel, table=True):
    __tablename__ = "privacy_notice_purpose"
    __table_args__ = (UniqueConstraint("notice_version", "purpose_key"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_version: int = Field(foreign_key="privacy_notice.version", index=True)
    purpose_key: str = Field(max_length=63, foreign_key="purpose.key")
    title: str = Field(max_length=200)
    description: str
    material_change: bool = False
