"""Use cases of the tamper-evident ledger: sign a checkpoint of chain heads; verify chains and checkpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

from dsr_gateway.domain.audit_chain import ChainBreak, ChainHead, ChainReport, verify_chain
from dsr_gateway.domain.audit_checkpoint import (
    CheckpointFinding,
    CheckpointProblem,
    checkpoint_claims,
    checkpoint_digest,
    compare_heads,
    merkle_root,
)
from dsr_gateway.domain.errors import PermissionDenied
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.services.audit_ports import (
    ChainSource,
    CheckpointStore,
    SignatureInvalid,
    Signer,
    StoredCheckpoint,
    StoredEvent,
)
from dsr_gateway.services.ports import Clock


class ChainRegistry:
    """Every kind of chained event the gateway keeps. app.py registers one source per event table."""

    def __init__(self, sources: Iterable[ChainSource] = ()) -> None:
        self._sources: list[ChainSource] = []
        for source in sources:
            self.register(source)

    def register(self, source: ChainSource) -> None:
        if any(s.kind == source.kind for s in self._sources):
            raise ValueError(f"a chain source of kind {source.kind!r} is registered already")
        self._sources.append(source)

    @property
    def sources(self) -> tuple[ChainSource, ...]:
        return tuple(self._sources)


@dataclass(frozen=True, slots=True)
class AuditVerification:
    chains_checked: int
    events_checked: int
    checkpoints_checked: int
    first_break: ChainBreak | None
    broken_chains: int
    checkpoint_findings: tuple[CheckpointFinding, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.first_break is None and not self.checkpoint_findings


def _require_auditor(principal: Principal) -> None:
    if not (principal.is_staff or principal.kind is PrincipalKind.SYSTEM):
        raise PermissionDenied("Only staff may verify the audit trail.")


def _require_checkpointer(principal: Principal) -> None:
    if not (principal.is_admin or principal.kind is PrincipalKind.SYSTEM):
        raise PermissionDenied("Only an administrator (or the scheduler) may create an audit checkpoint.")


class AuditService:
    def __init__(
        self, chains: ChainRegistry, checkpoints: CheckpointStore, signer: Signer, clock: Clock
    ) -> None:
        self._chains = chains
        self._checkpoints = checkpoints
        self._signer = signer
        self._clock = clock

    async def create_checkpoint(self, principal: Principal) -> StoredCheckpoint:
        """Sign the current head of every chain, linked to the previous checkpoint."""
        _require_checkpointer(principal)
        heads: dict[str, ChainHead] = {}
        for source in self._chains.sources:
            heads.update(await source.heads())
        previous = await self._checkpoints.latest()
        prev_digest = checkpoint_digest(previous.jws) if previous else None
        now = self._clock()
        root = merkle_root(heads)
        jws = self._signer.sign(checkpoint_claims(now, root, len(heads), prev_digest))
        return await self._checkpoints.add(now, heads, root, jws, self._signer.key_id, prev_digest)

    async def scheduled_checkpoint(self) -> StoredCheckpoint | None:
        """The worker's checkpoint: signed only when some chain moved since the latest one."""
        heads: dict[str, ChainHead] = {}
        for source in self._chains.sources:
            heads.update(await source.heads())
        previous = await self._checkpoints.latest()
        if previous is not None and dict(previous.heads) == heads:
            return None
        if previous is None and not heads:
            return None
        return await self.create_checkpoint(Principal.system())

    async def verify(self, principal: Principal) -> AuditVerification:
        """Re-check every chain from its first event, then every checkpoint against the chains."""
        _require_auditor(principal)
        checkpoints = [c async for c in self._checkpoints.all()]
        findings = self._check_checkpoints(checkpoints)
        wanted: dict[str, set[int]] = {}
        for checkpoint in checkpoints:
            for key, head in checkpoint.heads.items():
                wanted.setdefault(key, set()).add(head.sequence)
        reports: dict[str, ChainReport] = {}
        chains = events = broken = 0
        first_break: ChainBreak | None = None
        for source in self._chains.sources:
            async for report in _chain_reports(source, wanted):
                chains += 1
                events += report.events_checked
                if report.first_break is not None:
                    broken += 1
                    first_break = first_break or report.first_break
                if report.chain_key in wanted:
                    reports[report.chain_key] = report
        for checkpoint in checkpoints:
            findings.extend(compare_heads(checkpoint.id, checkpoint.heads, reports))
        return AuditVerification(chains, events, len(checkpoints), first_break, broken, tuple(findings))

    def _check_checkpoints(self, checkpoints: list[StoredCheckpoint]) -> list[CheckpointFinding]:
        findings: list[CheckpointFinding] = []
        previous: StoredCheckpoint | None = None
        for checkpoint in checkpoints:
            findings.extend(_check_one(checkpoint, previous, self._signer))
            previous = checkpoint
        return findings


def _check_one(
    checkpoint: StoredCheckpoint, previous: StoredCheckpoint | None, signer: Signer
) -> list[CheckpointFinding]:
    def finding(problem: CheckpointProblem, detail: str) -> CheckpointFinding:
        return CheckpointFinding(checkpoint.id, problem, detail)

    try:
        claims = signer.verify(checkpoint.jws)
    except SignatureInvalid as exc:
        return [finding(CheckpointProblem.BAD_SIGNATURE, str(exc))]
    found: list[CheckpointFinding] = []
    if claims.get("root") != checkpoint.root or merkle_root(checkpoint.heads) != checkpoint.root:
        found.append(
            finding(CheckpointProblem.ROOT_MISMATCH, "the stored chain heads do not give the signed root")
        )
    expected_prev = checkpoint_digest(previous.jws) if previous else None
    if claims.get("prev") != expected_prev:
        found.append(
            finding(
                CheckpointProblem.CHAIN_OF_CHECKPOINTS_BROKEN,
                "this checkpoint does not follow the one stored before it: a checkpoint was deleted, "
                "replaced or reordered",
            )
        )
    return found


async def _chain_reports(source: ChainSource, wanted: Mapping[str, set[int]]) -> AsyncIterator[ChainReport]:
    """One report per chain, from one ordered pass over the source's events."""
    current_key: str | None = None
    batch: list[StoredEvent] = []
    async for key, event in source.all_events():
        if key != current_key and current_key is not None:
            yield verify_chain(current_key, batch, source.layout, frozenset(wanted.get(current_key, ())))
            batch = []
        current_key = key
        batch.append(event)
    if current_key is not None:
        yield verify_chain(current_key, batch, source.layout, frozenset(wanted.get(current_key, ())))
