"""Access packages handed out to subjects: where the file is, its digest, until when its link works."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, text
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime

# The packages whose file is still kept: what the clean-up sweep looks through.
KEPT = text("deleted_at IS NULL")


class ExportPackageRow(SQLModel, table=True):
    __tablename__ = "export_package"
    __table_args__ = (
        # The clean-up sweep: kept packages by expiry (deleted ones stay as the record of delivery).
        Index("ix_export_package_expires_at", "expires_at", postgresql_where=KEPT, sqlite_where=KEPT),
    )

    id: str = Field(primary_key=True, max_length=32)  # uuid4 hex, also in the signed link
    # The privacy request it answers; a plain string until the requests table is merged.
    request_id: str = Field(max_length=64, index=True)
    path: str = Field(max_length=255)  # the storage key
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    download_count: int = Field(default=0)
    # When the sweep deleted the file after expiry (the row stays: id, request, size, digest, dates).
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
