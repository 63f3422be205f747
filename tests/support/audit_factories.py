"""In-memory chain source and checkpoint store, a fixed clock and a signer, for the audit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from dsr_gateway.connectors.signing import Ed25519Signer, generate_signing_key
from dsr_gateway.domain.audit_chain import DEFAULT_LAYOUT, ChainHead, ChainLayout, chain_key, seal
from dsr_gateway.domain.errors import Conflict
from dsr_gateway.services.audit_ports import StoredCheckpoint, StoredEvent

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def new_signer() -> Ed25519Signer:
    return Ed25519Signer.from_setting(generate_signing_key())


class StepClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class MemoryChainSource:
    """Chains as lists of stored rows, sealed with the real convention; tests edit the rows."""

    kind: str = "consent"
    layout: ChainLayout = DEFAULT_LAYOUT
    chains: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    next_id: int = 1

    def append(self, owner: int, **values: object) -> dict[str, object]:
        key = chain_key(self.kind, owner)
        events = self.chains.setdefault(key, [])
        head = ChainHead(events[-1]["sequence"], events[-1]["hash"]) if events else None  # type: ignore[arg-type]
        fields = {"id": self.next_id, "owner": owner, "recorded_at": T0, **values}
        self.next_id += 1
        sealed = seal(head, fields, self.layout)
        events.append(sealed)
        return sealed

    async def chain_keys(self) -> AsyncIterator[str]:
        for key in sorted(self.chains):
            yield key

    async def events(self, chain_key: str) -> AsyncIterator[StoredEvent]:
        for event in self.chains.get(chain_key, []):
            yield event

    async def all_events(self) -> AsyncIterator[tuple[str, StoredEvent]]:
        for key in sorted(self.chains):
            for event in self.chains[key]:
                yield key, event

    async def heads(self) -> dict[str, ChainHead]:
        return {
            key: ChainHead(events[-1]["sequence"], events[-1]["hash"])  # type: ignore[arg-type]
            for key, events in self.chains.items()
            if events
        }


@dataclass
class MemoryCheckpointStore:
    rows: list[StoredCheckpoint] = field(default_factory=list)
    prev_digests: set[str | None] = field(default_factory=set)

    async def add(
        self,
        created_at: datetime,
        heads: Mapping[str, ChainHead],
        root: str,
        jws: str,
        key_id: str,
        prev_digest: str | None,
    ) -> StoredCheckpoint:
        if prev_digest in self.prev_digests:
            raise Conflict("Another checkpoint was created at the same moment; create it again.")
        self.prev_digests.add(prev_digest)
        stored = StoredCheckpoint(len(self.rows) + 1, created_at, dict(heads), root, jws, key_id)
        self.rows.append(stored)
        return stored

    async def latest(self) -> StoredCheckpoint | None:
        return self.rows[-1] if self.rows else None

    async def all(self) -> AsyncIterator[StoredCheckpoint]:
        for row in self.rows:
            yield row

    def edit(self, index: int, **changes: object) -> None:
        self.rows[index] = replace(self.rows[index], **changes)  # type: ignore[arg-type]
