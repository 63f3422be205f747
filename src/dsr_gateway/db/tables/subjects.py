"""Subjects: the people whose data and permissions the gateway keeps, known by the business's id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class SubjectRow(SQLModel, table=True):
    __tablename__ = "subject"

    id: int | None = Field(default=None, primary_key=True)
    # The business's own identifier (the JWT `sub` of a signed-in customer); nothing more personal.
    external_id: str = Field(max_length=255, unique=True, index=True)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
