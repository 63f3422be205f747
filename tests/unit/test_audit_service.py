"""Checkpoints and verification over in-memory chains: each tampering found and named."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dsr_gateway.domain.audit_chain import ChainHead, ChainProblem, event_hash
from dsr_gateway.domain.audit_checkpoint import CheckpointProblem, merkle_root
from dsr_gateway.domain.errors import Conflict, PermissionDenied
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.services.audit import AuditService, ChainRegistry
from tests.support.audit_factories import MemoryChainSource, MemoryCheckpointStore, StepClock, new_signer

ADMIN = Principal(PrincipalKind.STAFF, "admin-1", frozenset({Role.ADMIN}))
AGENT = Principal(PrincipalKind.STAFF, "agent-1", frozenset({Role.AGENT}))
SYSTEM = Principal.system()


def seeded() -> tuple[MemoryChainSource, MemoryChainSource]:
    consents = MemoryChainSource(kind="consent")
    requests = MemoryChainSource(kind="request")
    for owner in (1, 2):
        for index in range(4):
            consents.append(owner, purpose="marketing_email", choice="GRANTED" if index % 2 else "WITHDRAWN")
    for step in ("SUBMITTED", "VERIFIED", "APPROVED"):
        requests.append(9, status=step)
    return consents, requests


def service(
    *sources: MemoryChainSource, store: MemoryCheckpointStore | None = None, signer=None
) -> tuple[AuditService, MemoryCheckpointStore]:
    store = store or MemoryCheckpointStore()
    return AuditService(ChainRegistry(sources), store, signer or new_signer(), StepClock()), store


def rehash_tail(events: list[dict[str, object]], start: int) -> None:
    """What an insider who knows the (public) convention does to make a changed chain look whole."""
    for index in range(start, len(events)):
        prev = events[index - 1]["hash"] if index else "0" * 64
        events[index]["prev_hash"] = prev
        events[index]["hash"] = event_hash(prev, events[index])  # type: ignore[arg-type]


async def test_untouched_chains_and_checkpoints_verify() -> None:
    consents, requests = seeded()
    audit, store = service(consents, requests)
    await audit.create_checkpoint(SYSTEM)
    requests.append(9, status="COMPLETED")  # growth after a checkpoint is fine
    await audit.create_checkpoint(ADMIN)
    report = await audit.verify(AGENT)
    assert report.ok, report
    assert (report.chains_checked, report.events_checked, report.checkpoints_checked) == (3, 12, 2)
    first, second = store.rows
    assert first.heads["request:9"] == ChainHead(3, requests.chains["request:9"][2]["hash"])  # type: ignore[arg-type]
    assert second.heads["request:9"].sequence == 4
    assert second.root == merkle_root(second.heads)


def truncate_tail(c: MemoryChainSource, r: MemoryChainSource, store: MemoryCheckpointStore) -> None:
    del c.chains["consent:2"][-1]


def rewrite_tail(c: MemoryChainSource, r: MemoryChainSource, store: MemoryCheckpointStore) -> None:
    c.chains["consent:1"][1]["choice"] = "WITHDRAWN"
    rehash_tail(c.chains["consent:1"], 1)


def delete_chain(c: MemoryChainSource, r: MemoryChainSource, store: MemoryCheckpointStore) -> None:
    del r.chains["request:9"]


def edit_heads(c: MemoryChainSource, r: MemoryChainSource, store: MemoryCheckpointStore) -> None:
    heads = dict(store.rows[0].heads)
    heads["consent:2"] = ChainHead(3, c.chains["consent:2"][2]["hash"])  # type: ignore[arg-type]
    store.edit(0, heads=heads)


def tamper_signature(c: MemoryChainSource, r: MemoryChainSource, store: MemoryCheckpointStore) -> None:
    header, payload, signature = store.rows[0].jws.split(".")
    store.edit(0, jws=f"{header}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}")


def sign_with_other_key(c: MemoryChainSource, r: MemoryChainSource, store: MemoryCheckpointStore) -> None:
    store.edit(0, jws=new_signer().sign({"root": store.rows[0].root, "prev": None}))


CHECKPOINT_TAMPERING: list[tuple[str, Callable[..., None], CheckpointProblem, str | None]] = [
    ("truncated tail after a checkpoint", truncate_tail, CheckpointProblem.TRUNCATED, "consent:2"),
    ("chain rewritten and re-hashed", rewrite_tail, CheckpointProblem.REWRITTEN, "consent:1"),
    ("whole chain deleted", delete_chain, CheckpointProblem.CHAIN_MISSING, "request:9"),
    ("stored heads edited", edit_heads, CheckpointProblem.ROOT_MISMATCH, None),
    ("signature altered", tamper_signature, CheckpointProblem.BAD_SIGNATURE, None),
    ("re-signed with another key", sign_with_other_key, CheckpointProblem.BAD_SIGNATURE, None),
]


@pytest.mark.parametrize(
    ("tamper", "problem", "chain"),
    [t[1:] for t in CHECKPOINT_TAMPERING],
    ids=[t[0] for t in CHECKPOINT_TAMPERING],
)
async def test_checkpoint_tampering_is_found(
    tamper: Callable[..., None], problem: CheckpointProblem, chain: str | None
) -> None:
    consents, requests = seeded()
    audit, store = service(consents, requests)
    await audit.create_checkpoint(SYSTEM)
    tamper(consents, requests, store)
    report = await audit.verify(SYSTEM)
    assert not report.ok
    assert [(f.problem, f.chain_key, f.checkpoint_id) for f in report.checkpoint_findings] == [
        (problem, chain, 1)
    ]
    assert report.checkpoint_findings[0].detail


async def test_a_rewritten_chain_verifies_alone_but_not_against_the_checkpoint() -> None:
    consents, requests = seeded()
    audit, _ = service(consents, requests)
    await audit.create_checkpoint(SYSTEM)
    rewrite_tail(consents, requests, MemoryCheckpointStore())
    report = await audit.verify(SYSTEM)
    assert report.first_break is None  # the chain itself is consistent: only the signature catches it
    assert not report.ok


async def test_a_deleted_checkpoint_breaks_the_chain_of_checkpoints() -> None:
    consents, requests = seeded()
    audit, store = service(consents, requests)
    for _ in range(3):
        await audit.create_checkpoint(SYSTEM)
    del store.rows[1]
    report = await audit.verify(SYSTEM)
    assert [(f.problem, f.checkpoint_id) for f in report.checkpoint_findings] == [
        (CheckpointProblem.CHAIN_OF_CHECKPOINTS_BROKEN, 3)
    ]


async def test_the_first_break_across_chains_is_reported_with_counts() -> None:
    consents, requests = seeded()
    consents.chains["consent:2"][1]["choice"] = "forged"
    del requests.chains["request:9"][1]
    audit, _ = service(consents, requests)
    report = await audit.verify(AGENT)
    assert report.first_break is not None
    assert (report.first_break.chain_key, report.first_break.event_id, report.first_break.sequence) == (
        "consent:2",
        str(consents.chains["consent:2"][1]["id"]),
        2,
    )
    assert report.first_break.problem is ChainProblem.HASH_MISMATCH
    assert report.broken_chains == 2
    assert report.events_checked == 10


async def test_who_may_verify_and_checkpoint() -> None:
    audit, _ = service(*seeded())
    subject = Principal(PrincipalKind.SUBJECT, "customer-1")
    with pytest.raises(PermissionDenied):
        await audit.verify(subject)
    with pytest.raises(PermissionDenied):
        await audit.create_checkpoint(AGENT)


async def test_two_checkpoints_racing_on_the_same_predecessor_conflict() -> None:
    store = MemoryCheckpointStore()
    audit, _ = service(*seeded(), store=store)
    first = await audit.create_checkpoint(SYSTEM)
    await audit.create_checkpoint(SYSTEM)

    async def stale_latest() -> object:  # what a concurrent caller read before the second one committed
        return first

    store.latest = stale_latest  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        await audit.create_checkpoint(SYSTEM)


def test_a_source_kind_is_registered_once() -> None:
    registry = ChainRegistry([MemoryChainSource(kind="consent")])
    with pytest.raises(ValueError, match="registered already"):
        registry.register(MemoryChainSource(kind="consent"))
