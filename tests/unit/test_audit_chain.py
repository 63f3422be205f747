"""Hash chains: the convention, and every kind of tampering found at the right first broken event."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from uuid import UUID

import pytest

from dsr_gateway.domain.audit_chain import (
    GENESIS_HASH,
    ChainHead,
    ChainLayout,
    ChainProblem,
    event_hash,
    hashed_document,
    normalise,
    seal,
    verify_chain,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
Event = dict[str, object]


class Choice(StrEnum):
    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"


def build_chain(length: int = 5, subject_id: int = 7) -> list[Event]:
    events: list[Event] = []
    head: ChainHead | None = None
    for index in range(length):
        fields: Event = {
            "id": 100 + index,
            "subject_id": subject_id,
            "purpose": "marketing_email",
            "choice": Choice.GRANTED if index % 2 == 0 else Choice.WITHDRAWN,
            "recorded_at": T0 + timedelta(minutes=index),
            "details": {"channel": "EMAIL", "topics": ["promotions"], "score": 0.5},
        }
        sealed = seal(head, fields)
        head = ChainHead(sealed["sequence"], sealed["hash"])  # type: ignore[arg-type]
        events.append(sealed)
    return events


def forge(event: Event, prev_hash: str) -> Event:
    """What someone who knows the convention (it is public) writes to make a row look right."""
    forged = dict(event)
    forged["prev_hash"] = prev_hash
    forged["hash"] = event_hash(prev_hash, forged)
    return forged


def change_value(events: list[Event]) -> list[Event]:
    events[2] = {**events[2], "choice": Choice.WITHDRAWN}
    return events


def change_nested_value(events: list[Event]) -> list[Event]:
    events[1] = {**events[1], "details": {"channel": "SMS", "topics": ["promotions"], "score": 0.5}}
    return events


def change_timestamp(events: list[Event]) -> list[Event]:
    events[3] = {**events[3], "recorded_at": events[3]["recorded_at"] - timedelta(days=1)}  # type: ignore[operator]
    return events


def delete_middle(events: list[Event]) -> list[Event]:
    del events[2]
    return events


def delete_first(events: list[Event]) -> list[Event]:
    del events[0]
    return events


def delete_middle_and_renumber(events: list[Event]) -> list[Event]:
    # Deleting sequence 3 and moving later rows down by one: their sequence (a hashed value) changes.
    del events[2]
    for event in events[2:]:
        event["sequence"] = event["sequence"] - 1  # type: ignore[operator]
    return events


def reorder_rows(events: list[Event]) -> list[Event]:
    # Rows handed over out of order (1, 3, 2 ...): the jump to 3 is the first thing wrong.
    events[1], events[2] = events[2], events[1]
    return events


def swap_sequences(events: list[Event]) -> list[Event]:
    # Someone swaps the sequence numbers of two rows; read back in sequence order.
    events[1]["sequence"], events[2]["sequence"] = events[2]["sequence"], events[1]["sequence"]
    events.sort(key=lambda e: e["sequence"])  # type: ignore[arg-type, return-value]
    return events


def insert_naive_forgery(events: list[Event]) -> list[Event]:
    forged = {**events[2], "id": 999, "choice": Choice.GRANTED}
    events.insert(3, forged)
    for event in events[3:]:
        event["sequence"] = event["sequence"] + 1  # type: ignore[operator]
    return events


def insert_careful_forgery(events: list[Event]) -> list[Event]:
    # A forged event at sequence 3, correctly linked to sequence 2 and correctly hashed: the real event
    # it pushed down still names sequence 2's hash as its prev_hash, so the break shows there.
    forged = forge({**events[2], "id": 999, "choice": Choice.WITHDRAWN}, events[1]["hash"])  # type: ignore[arg-type]
    events.insert(2, forged)
    for event in events[3:]:
        event["sequence"] = event["sequence"] + 1  # type: ignore[operator]
    return events


def rehash_changed_event(events: list[Event]) -> list[Event]:
    events[1] = forge({**events[1], "choice": Choice.GRANTED}, events[0]["hash"])  # type: ignore[arg-type]
    return events


def erase_hash(events: list[Event]) -> list[Event]:
    events[3] = {**events[3], "hash": None}
    return events


def move_to_other_chain(events: list[Event]) -> list[Event]:
    events[0] = {**events[0], "subject_id": 8}
    return events


def bad_sequence(events: list[Event]) -> list[Event]:
    events[1] = {**events[1], "sequence": "2"}
    return events


def duplicate_event(events: list[Event]) -> list[Event]:
    events.insert(2, dict(events[1]))
    return events


TAMPERING: list[tuple[str, Callable[[list[Event]], list[Event]], int, ChainProblem]] = [
    # (what, tamper, id of the first broken event, problem)
    ("changed value", change_value, 102, ChainProblem.HASH_MISMATCH),
    ("changed nested JSON value", change_nested_value, 101, ChainProblem.HASH_MISMATCH),
    ("changed timestamp", change_timestamp, 103, ChainProblem.HASH_MISMATCH),
    ("moved to another subject", move_to_other_chain, 100, ChainProblem.HASH_MISMATCH),
    ("deleted middle event", delete_middle, 103, ChainProblem.SEQUENCE_GAP),
    ("deleted first event", delete_first, 101, ChainProblem.SEQUENCE_GAP),
    ("deleted and renumbered", delete_middle_and_renumber, 103, ChainProblem.PREV_HASH_MISMATCH),
    ("reordered rows", reorder_rows, 102, ChainProblem.SEQUENCE_GAP),
    ("swapped sequence numbers", swap_sequences, 102, ChainProblem.PREV_HASH_MISMATCH),
    ("inserted naive forgery", insert_naive_forgery, 999, ChainProblem.PREV_HASH_MISMATCH),
    ("inserted careful forgery", insert_careful_forgery, 102, ChainProblem.PREV_HASH_MISMATCH),
    ("changed and re-hashed", rehash_changed_event, 102, ChainProblem.PREV_HASH_MISMATCH),
    ("erased hash", erase_hash, 103, ChainProblem.UNSEALED),
    ("sequence not a number", bad_sequence, 101, ChainProblem.MALFORMED),
    ("duplicated event", duplicate_event, 101, ChainProblem.SEQUENCE_OUT_OF_ORDER),
]


@pytest.mark.parametrize(
    ("tamper", "broken_id", "problem"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
def test_tampering_is_found_at_the_first_broken_event(
    tamper: Callable[[list[Event]], list[Event]], broken_id: int, problem: ChainProblem
) -> None:
    report = verify_chain("consent:7", tamper(build_chain()))
    assert not report.ok
    assert report.first_break is not None
    assert (report.first_break.event_id, report.first_break.problem) == (str(broken_id), problem)
    assert report.first_break.chain_key == "consent:7"
    assert report.first_break.detail


def test_an_untouched_chain_verifies() -> None:
    events = build_chain()
    report = verify_chain("consent:7", events)
    assert report.ok
    assert report.events_checked == 5
    assert report.head == ChainHead(5, events[-1]["hash"])  # type: ignore[arg-type]
    assert events[0]["prev_hash"] == GENESIS_HASH
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5]
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))


def test_an_empty_chain_verifies() -> None:
    report = verify_chain("request:1", [])
    assert report.ok
    assert report.head is None


def test_a_truncated_tail_is_invisible_without_a_checkpoint() -> None:
    # Documented limit: this is what signed checkpoints are for (see test_audit_checkpoint.py).
    assert verify_chain("consent:7", build_chain()[:3]).ok


def test_the_hash_is_sha256_over_the_stored_columns_minus_hash_with_prev_hash() -> None:
    fields: Event = {"id": 1, "sequence": 1, "prev_hash": "ignored", "hash": "ignored", "n": 1.0}
    document = hashed_document("ab" * 32, fields)
    assert document == {"id": 1, "sequence": 1, "prev_hash": "ab" * 32, "n": 1.0}
    # Independently computed: sha256 of the canonical JSON text.
    import hashlib

    text = '{"id":1,"n":1,"prev_hash":"' + "ab" * 32 + '","sequence":1}'
    assert event_hash("ab" * 32, fields) == hashlib.sha256(text.encode()).hexdigest()


def test_layout_names_other_columns_and_excludes_some() -> None:
    layout = ChainLayout(
        id_field="event_id",
        sequence_field="seq",
        prev_hash_field="prev",
        hash_field="digest",
        excluded=frozenset({"cache"}),
    )
    first = seal(None, {"event_id": "a", "cache": 1}, layout)
    second = seal(ChainHead(1, first["digest"]), {"event_id": "b", "cache": 2}, layout)  # type: ignore[arg-type]
    second["cache"] = 99  # excluded columns may change
    assert verify_chain("x:1", [first, second], layout).ok
    second["event_id"] = "c"
    report = verify_chain("x:1", [first, second], layout)
    assert report.first_break is not None
    assert report.first_break.event_id == "c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))), "2026-01-02T03:04:05.000000Z"),
        (T0, "2026-01-02T03:04:05.678901Z"),
        (Choice.GRANTED, "GRANTED"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ((1, {"a": T0}), [1, {"a": "2026-01-02T03:04:05.678901Z"}]),
    ],
)
def test_normalise(value: object, expected: object) -> None:
    assert normalise(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-11, minutes=-30))),
        datetime(2026, 12, 31, 23, 0, 0, 1, tzinfo=timezone(timedelta(hours=-2))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_time_is_hashed_as_its_strftime_text_always_was(value: datetime) -> None:
    # The text is written a faster way now; stored hashes depend on it staying exactly the same.
    assert normalise(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("value", [datetime(2026, 1, 1), b"x", object()])
def test_normalise_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="chained event"):
        normalise(value)
