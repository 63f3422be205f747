"""Checkpoints: the heads of every chain at one moment, reduced to one Merkle root and signed.

A checkpoint makes a rewrite of a whole chain tail detectable: once a head (sequence, hash) is signed, the
chain must still hold that hash at that sequence. Checkpoints are chained too (each signs the previous
checkpoint's digest), so deleting one in the middle shows.

Merkle root (RFC 6962 §2.1 tree hash, SHA-256): leaves are the chains sorted by key (UTF-16 order, as
JCS sorts), leaf = SHA-256(0x00 || JCS([chain_key, sequence, hash])), node = SHA-256(0x01 || left ||
right); the root of no chains is SHA-256 of the empty string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dsr_gateway.domain.audit_chain import ChainHead, ChainReport
from dsr_gateway.domain.canonical_json import canonical_bytes, utf16_sort_key

CHECKPOINT_TYPE = "dsr-gateway/audit-checkpoint/v1"


def merkle_root(heads: Mapping[str, ChainHead]) -> str:
    leaves = [
        hashlib.sha256(b"\x00" + canonical_bytes([key, heads[key].sequence, heads[key].hash])).digest()
        for key in sorted(heads, key=utf16_sort_key)
    ]
    return _tree_hash(leaves).hex()


def _tree_hash(nodes: Sequence[bytes]) -> bytes:
    if not nodes:
        return hashlib.sha256(b"").digest()
    if len(nodes) == 1:
        return nodes[0]
    split = 1 << ((len(nodes) - 1).bit_length() - 1)  # the largest power of two below len(nodes)
    return hashlib.sha256(b"\x01" + _tree_hash(nodes[:split]) + _tree_hash(nodes[split:])).digest()


def heads_to_json(heads: Mapping[str, ChainHead]) -> dict[str, list[object]]:
    return {key: [head.sequence, head.hash] for key, head in heads.items()}


def heads_from_json(data: Mapping[str, object]) -> dict[str, ChainHead]:
    heads: dict[str, ChainHead] = {}
    for key, value in data.items():
        if not (isinstance(value, list) and len(value) == 2):
            raise ValueError(f"chain head {key!r} is not [sequence, hash]")
        sequence, digest = value
        if not isinstance(sequence, int) or not isinstance(digest, str):
            raise ValueError(f"chain head {key!r} is not [sequence, hash]")
        heads[key] = ChainHead(sequence, digest)
    return heads


def checkpoint_digest(jws: str) -> str:
    """What the next checkpoint signs as `prev`: SHA-256 of this checkpoint's compact JWS."""
    return hashlib.sha256(jws.encode("ascii")).hexdigest()


def checkpoint_claims(
    created_at: datetime, root: str, chain_count: int, prev_digest: str | None
) -> dict[str, object]:
    """The signed payload of a checkpoint."""
    return {
        "typ": CHECKPOINT_TYPE,
        "iat": int(created_at.timestamp()),
        "createdAt": created_at.isoformat(),
        "root": root,
        "chains": chain_count,
        "prev": prev_digest,
    }


class CheckpointProblem(StrEnum):
    BAD_SIGNATURE = "BAD_SIGNATURE"  # the JWS does not verify with the published key (or an unknown kid)
    ROOT_MISMATCH = "ROOT_MISMATCH"  # the stored heads do not give the signed root
    CHAIN_OF_CHECKPOINTS_BROKEN = "CHAIN_OF_CHECKPOINTS_BROKEN"  # a checkpoint was deleted or reordered
    CHAIN_MISSING = "CHAIN_MISSING"  # a checkpointed chain has no events any more
    TRUNCATED = "TRUNCATED"  # a checkpointed chain is shorter than its signed head
    REWRITTEN = "REWRITTEN"  # the event at the signed head's sequence has another hash now


@dataclass(frozen=True, slots=True)
class CheckpointFinding:
    checkpoint_id: int
    problem: CheckpointProblem
    detail: str
    chain_key: str | None = None


def compare_heads(
    checkpoint_id: int, heads: Mapping[str, ChainHead], reports: Mapping[str, ChainReport]
) -> list[CheckpointFinding]:
    """Does every chain still hold the head this checkpoint signed? One finding per chain that does not."""
    findings: list[CheckpointFinding] = []
    for key in sorted(heads, key=utf16_sort_key):
        signed = heads[key]
        report = reports.get(key)
        if report is None or report.head is None:
            findings.append(
                CheckpointFinding(
                    checkpoint_id, CheckpointProblem.CHAIN_MISSING, "the chain has no events now", key
                )
            )
        elif report.head.sequence < signed.sequence:
            findings.append(
                CheckpointFinding(
                    checkpoint_id,
                    CheckpointProblem.TRUNCATED,
                    f"the chain ends at sequence {report.head.sequence}; the checkpoint signed "
                    f"sequence {signed.sequence}: events at the end were deleted",
                    key,
                )
            )
        elif report.hashes_at.get(signed.sequence) != signed.hash:
            findings.append(
                CheckpointFinding(
                    checkpoint_id,
                    CheckpointProblem.REWRITTEN,
                    f"the event at sequence {signed.sequence} does not have the hash the checkpoint signed: "
                    "the chain was rewritten",
                    key,
                )
            )
    return findings
