"""Access packages handed out to subjects: where the file is, its digest, until when its link works."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class ExportPackageRow(SQLModel, table=True):
    __tablename__ = "export_package"

    id: str = Field(primary_key=True, max_length=32)  # uuid4 hex, also in the signed link
    # The privacy request it answers; a plain string until the requests table is merged.
    request_id: str = Field(max_length=64, index=True)
    path: str = Field(max_length=255)  # the storage key
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    # Indexed for the sweep that deletes expired packages.
    expires_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False, index=True))
    download_count: int = Field(default=0)
