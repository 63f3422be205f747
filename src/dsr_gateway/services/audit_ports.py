"""Ports of the accountability machinery: chain sources, checkpoint and receipt stores, a signer.

db/ and connectors/ satisfy them; services/audit.py and services/receipts.py depend on nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dsr_gateway.domain.audit_chain import ChainHead, ChainLayout
from dsr_gateway.domain.receipts import StoredReceipt
from dsr_gateway.services.ports import UnitOfWork

StoredEvent = Mapping[str, object]


class SignatureInvalid(Exception):
    """A JWS that does not verify: altered, signed by another key, or not a JWS at all."""


class ChainSource(Protocol):
    """One kind of chained event (consent events, request events ...), as stored.

    Chain keys are `<kind>:<id>` and unique across sources. Events are dicts of EVERY stored column
    (the hashed document is all of them except the hash column; see domain/audit_chain.py).
    """

    @property
    def kind(self) -> str: ...
    @property
    def layout(self) -> ChainLayout: ...

    def chain_keys(self) -> AsyncIterator[str]: ...
    def events(self, chain_key: str) -> AsyncIterator[StoredEvent]:
        """One chain's events in sequence order."""
        ...

    def all_events(self) -> AsyncIterator[tuple[str, StoredEvent]]:
        """Every event of every chain as (chain key, event), grouped by chain, each in sequence order."""
        ...

    async def heads(self) -> dict[str, ChainHead]:
        """The stored (sequence, hash) of the last event of every chain."""
        ...


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    id: int
    created_at: datetime
    heads: Mapping[str, ChainHead]
    root: str
    jws: str
    key_id: str


class CheckpointStore(Protocol):
    async def add(
        self,
        created_at: datetime,
        heads: Mapping[str, ChainHead],
        root: str,
        jws: str,
        key_id: str,
        prev_digest: str | None,
    ) -> StoredCheckpoint:
        """Conflict when another checkpoint already follows `prev_digest`."""
        ...

    async def latest(self) -> StoredCheckpoint | None: ...
    def all(self) -> AsyncIterator[StoredCheckpoint]:
        """Every checkpoint, oldest first."""
        ...


class ConsentReceiptRepository(Protocol):
    async def add_many(self, receipts: Sequence[StoredReceipt]) -> None: ...
    async def list_for_subject(self, subject_id: int, limit: int) -> Sequence[StoredReceipt]: ...
    async def list_for_subjects(
        self, subject_ids: Sequence[int], limit: int
    ) -> dict[int, list[StoredReceipt]]: ...
    async def get(self, receipt_id: str) -> StoredReceipt | None: ...


class ReceiptUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also keeps consent receipts (db/uow.py SqlUnitOfWork is one)."""

    @property
    def consent_receipts(self) -> ConsentReceiptRepository: ...


class Signer(Protocol):
    """Signs claims as a compact JWS with the gateway's key; verifies what it (or a listed key) signed."""

    @property
    def key_id(self) -> str: ...
    @property
    def public_jwk(self) -> Mapping[str, str]: ...

    def sign(self, claims: Mapping[str, object]) -> str: ...
    def verify(self, jws: str) -> dict[str, object]:
        """The claims, or SignatureInvalid."""
        ...
