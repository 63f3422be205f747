"""Hash chains: every stored event carries the hash of the one before it in its chain.

The convention (documented in docs/audit.md; change it only with a new GENESIS/version):

- A chain is named by a chain key `<kind>:<id>`: `consent:<subject id>`, `request:<request id>`. Events of
  different chains never wait for each other.
- Each event has a per-chain `sequence` (1, 2, 3 ... no gaps), `prev_hash` (the previous event's `hash`;
  GENESIS_HASH for sequence 1) and `hash`.
- `hash` = lower-case hex SHA-256 of the RFC 8785 canonical JSON of the event's hashed document: EVERY
  stored column of the row except `hash` itself, by column name, values normalised by `normalise()`
  (aware datetimes as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, enums by value, UUIDs as text), with
  `prev_hash` set to the previous event's hash. Adding a column to an event table therefore changes the
  hash of new events only if it is written; old rows verify with the value they hold (a column added with
  a default is part of their document from then on, so backfill such columns before sealing, or exclude
  them through `ChainLayout.excluded`).

The hash is unkeyed on purpose: anyone can recompute it. What stops someone who can write the database from
rewriting a whole tail is the signed checkpoint of chain heads (domain/audit_checkpoint.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timezone
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Any
from uuid import UUID

from dsr_gateway.domain.canonical_json import (
    MAX_SAFE_INTEGER,
    canonical_bytes,
    canonical_json,
    string_text,
    utf16_sort_key,
)

GENESIS_HASH = "0" * 64
MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ChainLayout:
    """Which stored columns play the chain's roles. Every other column is hashed."""

    id_field: str = "id"
    sequence_field: str = "sequence"
    prev_hash_field: str = "prev_hash"
    hash_field: str = "hash"
    # Columns that are not part of the evidence (e.g. a cache updated later). Prefer none.
    excluded: frozenset[str] = frozenset()


DEFAULT_LAYOUT = ChainLayout()


@dataclass(frozen=True, slots=True)
class ChainHead:
    sequence: int
    hash: str


def chain_key(kind: str, identifier: object) -> str:
    """`consent:42`, `request:17`: the name of one chain."""
    return f"{kind}:{identifier}"


def normalise(value: object) -> object:
    """The JSON value hashed for a stored value; the same before writing and after reading back."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return normalise(value.value)
    if isinstance(value, datetime):
        return _time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    raise ValueError(f"{type(value).__name__} cannot be hashed in a chained event; store JSON-like values")


def _time_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime in a chained event; store aware UTC datetimes")
    # Converted before the cache: two times of one zone that differ only in `fold` (an hour repeated when
    # clocks go back) compare and hash equal, and would share one cached text.
    return _utc_text(value if value.tzinfo is UTC else value.astimezone(UTC))


def time_json(value: datetime) -> str:
    """`canonical_json(normalise(value))` of a time, quoted directly (its text needs no escaping)."""
    return f'"{_time_text(value)}"'


UTC_TEXT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the hashed form of a time


@lru_cache(maxsize=4096)
def _utc_text(value: datetime) -> str:
    """The hashed text of a UTC time (imports and batches repeat their times: formatting one costs more
    than hashing a row's text)."""
    if value.year < 1000:  # strftime writes such a year unpadded: kept, as it was hashed
        return value.strftime(UTC_TEXT)
    return value.isoformat(timespec="microseconds")[:26] + "Z"  # the same text, in half the time


def hashed_document(
    prev_hash: str, event_fields: Mapping[str, object], layout: ChainLayout = DEFAULT_LAYOUT
) -> dict[str, object]:
    """The object whose canonical JSON is hashed: stored columns minus `hash`, with `prev_hash` set."""
    document = {
        name: normalise(value)
        for name, value in event_fields.items()
        if name != layout.hash_field and name not in layout.excluded
    }
    document[layout.prev_hash_field] = prev_hash
    return document


def event_hash(
    prev_hash: str, event_fields: Mapping[str, object], layout: ChainLayout = DEFAULT_LAYOUT
) -> str:
    """SHA-256 (hex) over the canonical JSON of the event's stored fields and the previous hash."""
    return hashlib.sha256(canonical_bytes(hashed_document(prev_hash, event_fields, layout))).hexdigest()


def next_link(head: ChainHead | None) -> tuple[int, str]:
    """(sequence, prev_hash) for the next event of a chain whose current head is `head`."""
    return (1, GENESIS_HASH) if head is None else (head.sequence + 1, head.hash)


def seal(
    head: ChainHead | None, event_fields: Mapping[str, object], layout: ChainLayout = DEFAULT_LAYOUT
) -> dict[str, object]:
    """The event's fields with sequence, prev_hash and hash filled in, ready to insert.

    Use it when every hashed value is known before the INSERT: columns the database assigns (the id) must
    be left out through `ChainLayout.excluded`. (db/repositories/chain_sealing.py `ChainSealer` writes the
    same hashes through a `ChainTemplate`, quicker for many events of one table.)
    """
    sequence, prev_hash = next_link(head)
    fields = dict(event_fields)
    fields[layout.sequence_field] = sequence
    fields[layout.prev_hash_field] = prev_hash
    fields[layout.hash_field] = event_hash(prev_hash, fields, layout)
    return fields


class ChainTemplate:
    """`event_hash` for many events of one shape (a bulk import), several times faster, same hashes.

    The hashed text is written from a %-format made once: member names sorted (by UTF-16 code units) and
    the `constants` written once; per event only the `varying` values are written, each exactly as
    `canonical_json` writes it (tests compare both on many documents). With `memo`, the texts of the
    first MEMO_SIZE distinct strings and times are kept for the template's life (an import's purposes,
    actions and dates repeat); a template that lives as long as the process and sees values that do not
    repeat (live writes: times, subjects' ids) is made without.
    """

    def __init__(
        self,
        varying: Sequence[str],
        constants: Mapping[str, object],
        layout: ChainLayout = DEFAULT_LAYOUT,
        memo: bool = True,
    ) -> None:
        names = [*varying, *constants, layout.prev_hash_field]
        if len(set(names)) != len(names) or layout.hash_field in names:
            raise ValueError("each hashed name once, as varying or constant; prev_hash and hash are set here")
        slots = {name: "%s" for name in (*varying, layout.prev_hash_field)}
        slots.update({k: canonical_json(normalise(v)).replace("%", "%%") for k, v in constants.items()})
        order = sorted(names, key=utf16_sort_key)
        members = (f"{string_text(name).replace('%', '%%')}:{slots[name]}" for name in order)
        self._format = "{" + ",".join(members) + "}"
        slotted = [n for n in order if slots[n] == "%s"]
        self._prev_at = slotted.index(layout.prev_hash_field)
        # Varying names given in another order than the slots': which given value fills each slot.
        given = [*varying[: self._prev_at], layout.prev_hash_field, *varying[self._prev_at :]]
        self._take = None if given == slotted else [given.index(n) for n in slotted]
        self._texts: dict[object, str] = {}  # canonical text by str or datetime value
        self._memo_size = MEMO_SIZE if memo else 0

    def hash(self, prev_hash: str, values: Sequence[Any]) -> str:
        """The event's hash, `values` given in the order of `varying`."""
        texts: list[str] = []
        add = texts.append
        memo = self._texts
        for value in values:  # the common types inline: this loop runs for every imported row
            kind = type(value)
            if kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                add(str(value))
            elif value is None:
                add("null")
            elif kind is str or (kind is datetime and type(value.tzinfo) is timezone):
                # Texts, times: the same few values again and again (purposes, actions, a file's dates).
                # Only times at a fixed offset are remembered: times of a zone with summer time that
                # differ only in `fold` compare equal.
                text = memo.get(value)
                if text is None:  # refuses what event_hash refuses (a naive time, a lone surrogate)
                    text = time_json(value) if kind is datetime else string_text(value)
                    if len(memo) < self._memo_size:
                        memo[value] = text
                add(text)
            else:
                add(canonical_json(normalise(value)))  # enums, floats ...
        texts.insert(self._prev_at, string_text(prev_hash))
        if self._take is not None:
            texts = [texts[i] for i in self._take]
        return hashlib.sha256((self._format % tuple(texts)).encode("utf-8")).hexdigest()


class ChainProblem(StrEnum):
    HASH_MISMATCH = "HASH_MISMATCH"  # a hashed value was changed after the event was written
    PREV_HASH_MISMATCH = "PREV_HASH_MISMATCH"  # an event before it was deleted, inserted or rewritten
    SEQUENCE_GAP = "SEQUENCE_GAP"  # events are missing before this one
    SEQUENCE_OUT_OF_ORDER = "SEQUENCE_OUT_OF_ORDER"  # reordered or duplicated sequence numbers
    UNSEALED = "UNSEALED"  # the event has no hash (written without the chain, or the hash was erased)
    MALFORMED = "MALFORMED"  # the sequence is not a number, or a value cannot be hashed


@dataclass(frozen=True, slots=True)
class ChainBreak:
    chain_key: str
    event_id: str
    sequence: int | None
    problem: ChainProblem
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    chain_key: str
    events_checked: int
    head: ChainHead | None  # the last event's stored (sequence, hash), even when the chain is broken
    first_break: ChainBreak | None
    # Stored hash by sequence, kept only for the sequences asked for (checkpoint comparison).
    hashes_at: Mapping[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.first_break is None


def verify_chain(
    key: str,
    events: Iterable[Mapping[str, object]],
    layout: ChainLayout = DEFAULT_LAYOUT,
    keep_hashes_at: frozenset[int] = frozenset(),
) -> ChainReport:
    """Re-check one chain given in sequence order; report the FIRST broken event and what is wrong.

    Checks per event, in this order: it is sealed; its sequence follows the previous one; its `prev_hash`
    is the previous event's stored `hash`; its `hash` matches its stored fields.
    """
    first_break: ChainBreak | None = None
    previous: ChainHead | None = None
    checked = 0
    hashes_at: dict[int, str] = {}
    for event in events:
        checked += 1
        stored_hash = event.get(layout.hash_field)
        sequence = event.get(layout.sequence_field)
        if isinstance(sequence, int) and isinstance(stored_hash, str) and sequence in keep_hashes_at:
            hashes_at[sequence] = stored_hash
        if first_break is None:
            problem = _first_problem(event, previous, layout)
            if problem is not None:
                first_break = ChainBreak(
                    key,
                    str(event.get(layout.id_field)),
                    sequence if isinstance(sequence, int) else None,
                    problem[0],
                    problem[1],
                )
        if isinstance(sequence, int) and isinstance(stored_hash, str):
            previous = ChainHead(sequence, stored_hash)
    return ChainReport(key, checked, previous, first_break, hashes_at)


def _first_problem(
    event: Mapping[str, object], previous: ChainHead | None, layout: ChainLayout
) -> tuple[ChainProblem, str] | None:
    stored_hash = event.get(layout.hash_field)
    sequence = event.get(layout.sequence_field)
    stored_prev = event.get(layout.prev_hash_field)
    if not isinstance(stored_hash, str) or not stored_hash:
        return ChainProblem.UNSEALED, "the event has no hash: it was written outside the chain"
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        return ChainProblem.MALFORMED, f"the sequence {sequence!r} is not a number"
    expected_sequence, expected_prev = next_link(previous)
    if sequence > expected_sequence:
        missing = (
            f"{expected_sequence}"
            if sequence == expected_sequence + 1
            else f"{expected_sequence} to {sequence - 1}"
        )
        return ChainProblem.SEQUENCE_GAP, (
            f"sequence {missing} is missing before {sequence}: events were deleted (or stored out of order)"
        )
    if sequence < expected_sequence:
        return (
            ChainProblem.SEQUENCE_OUT_OF_ORDER,
            f"sequence {sequence} comes where {expected_sequence} was expected: "
            "events reordered or duplicated",
        )
    if stored_prev != expected_prev:
        return (
            ChainProblem.PREV_HASH_MISMATCH,
            "prev_hash is not the hash of the event before it: an earlier event was deleted, inserted, "
            "moved or rewritten",
        )
    try:
        recomputed = event_hash(expected_prev, event, layout)
    except ValueError as exc:
        return ChainProblem.MALFORMED, f"the event cannot be hashed: {exc}"
    if recomputed != stored_hash:
        return (
            ChainProblem.HASH_MISMATCH,
            "the stored hash does not match the event's values: a value changed",
        )
    return None
