"""The consent ledger (append-only events) and its projection (the current state per scope)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, text
from sqlmodel import Field, SQLModel

from dsr_gateway.db.types import UtcDateTime

# SQLite only auto-numbers an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
EventId = BigInteger().with_variant(Integer(), "sqlite")
KEYED = text("idempotency_key IS NOT NULL")


class ConsentEventRow(SQLModel, table=True):
    """One recorded consent event. Rows are inserted, never updated or deleted (no code path does)."""

    __tablename__ = "consent_event"
    __table_args__ = (
        Index("ix_consent_event_subject_id_id", "subject_id", "id"),
        Index("ix_consent_event_feed", "tx_order", "id"),
        # Only keyed events: most carry no key (every imported row), and a replay looks up a key.
        Index(
            "ix_consent_event_idempotency",
            "subject_id",
            "idempotency_key",
            postgresql_where=KEYED,
            sqlite_where=KEYED,
        ),
        # The subject's hash chain (docs/audit.md): one event per place, found by position.
        Index("uq_consent_event_chain", "subject_id", "sequence", unique=True),
        # The compliance report counts events by the time they occurred.
        Index("ix_consent_event_occurred_at", "occurred_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(EventId, primary_key=True, autoincrement=True))
    # The writing transaction's id on PostgreSQL (pg_current_xact_id), 0 on SQLite whose writers are
    # serialised; the changes feed orders by (tx_order, id) and stops below the oldest open transaction.
    tx_order: int = Field(sa_column=Column(BigInteger, nullable=False, server_default=text("0")))
    subject_id: int = Field(sa_column=Column(Integer, ForeignKey("subject.id"), nullable=False))
    purpose_key: str = Field(sa_column=Column(String(63), ForeignKey("purpose.key"), nullable=False))
    topic: str = Field(default="", max_length=63)
    channel: str = Field(default="", max_length=16)
    action: str = Field(max_length=16)
    method: str = Field(max_length=20)
    notice_version: int | None = None
    origin_app_id: str | None = Field(default=None, max_length=200)
    origin_url: str | None = Field(default=None, max_length=2000)
    origin_user_agent: str | None = Field(default=None, max_length=1000)
    origin_ip: str | None = Field(default=None, max_length=64)
    actor_kind: str = Field(max_length=16)
    actor_id: str = Field(max_length=255)
    occurred_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    # The caller's key for one setConsents/withdrawConsent call: a retry finds these events.
    idempotency_key: str | None = Field(default=None, max_length=200)
    # Tamper evidence (db/repositories/chain_sealing.py): place in the subject's chain, the previous
    # event's hash and this one's.
    sequence: int | None = None
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)


class ConsentStateRow(SQLModel, table=True):
    """The projection, written in the transaction of the event that changed it.

    `topic` and `channel` are "" (not NULL) for "any", so the primary key is the uniqueness rule.
    """

    __tablename__ = "consent_state"
    # Reviews: what falls due per purpose (consentsDueForReview, the campaign, the expiry sweep).
    __table_args__ = (Index("ix_consent_state_review", "purpose_key", "status", "given_at"),)

    # No foreign keys: subject and purpose are those of the event the row was folded from, and
    # consent_event checks both (migration 0011: the second check cost every write and import row).
    subject_id: int = Field(sa_column=Column(Integer, primary_key=True))
    purpose_key: str = Field(sa_column=Column(String(63), primary_key=True))
    topic: str = Field(default="", sa_column=Column(String(63), primary_key=True))
    channel: str = Field(default="", sa_column=Column(String(16), primary_key=True))
    status: str = Field(max_length=16)
    method: str = Field(max_length=20)
    notice_version: int | None = None
    given_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    last_event_id: int = Field(sa_column=Column(EventId, nullable=False))


class ConsentFollowUpRow(SQLModel, table=True):
    """How far a follower of the changes feed got: the receipts and messages of every consent change are
    made from the ledger after it commits (services/consent_followups.py), up to this position."""

    __tablename__ = "consent_followup"

    name: str = Field(sa_column=Column(String(40), primary_key=True))
    tx_order: int = Field(sa_column=Column(BigInteger, nullable=False))
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
