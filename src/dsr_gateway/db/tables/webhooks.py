"""Webhook subscriptions and the log of their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime


class WebhookSubscriptionRow(SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Encrypted (connectors/secret_box.py): we need it back to sign, so it cannot be hashed.
    secret_encrypted: str = Field(max_length=1000)
    description: str = Field(default="", max_length=500)
    # Deleting a subscription deactivates it: its delivery log stays readable.
    active: bool = True
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))


class WebhookDeliveryRow(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # The sender's sweep: due pending deliveries, oldest first.
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        # The staff log: a subscription's deliveries, newest first.
        Index("ix_webhook_delivery_subscription", "subscription_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscription.id")
    event_id: str = Field(max_length=36)
    event_type: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    redelivery_of: int | None = Field(default=None, foreign_key="webhook_delivery.id")
