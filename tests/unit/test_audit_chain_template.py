"""ChainTemplate gives exactly event_hash's hash for any split of the fields into constant and varying."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

import pytest

from dsr_gateway.domain.audit_chain import ChainLayout, ChainTemplate, event_hash, normalise
from tests.unit.test_canonical_json_fast import ALPHABET, text

LAYOUT = ChainLayout(excluded=frozenset({"id"}))


class Colour(StrEnum):
    RED = "RED"
    ÉCRU = "écru"


def value(rng: random.Random) -> object:
    return rng.choice(
        [
            None,
            True,
            False,
            rng.randint(-(2**53), 2**53),
            0.5,
            text(rng, ALPHABET, 12),
            "100% %s %%",
            Colour.ÉCRU,
            datetime(2025, 3, 1, 10, 0, rng.randint(0, 59), rng.randint(0, 999_999), UTC),
            datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
            {"a": [1, "é"]},
        ]
    )


def test_template_hashes_equal_event_hash() -> None:
    rng = random.Random(2026)
    for _ in range(2000):
        names = list(dict.fromkeys(text(rng, ALPHABET, 6) for _ in range(rng.randint(1, 12))))
        names = [n for n in names if n not in ("hash", "prev_hash")] + ["sequence"]
        fields = {name: value(rng) for name in names}
        varying = [n for n in names if rng.random() < 0.5]
        constants = {n: v for n, v in fields.items() if n not in varying}
        template = ChainTemplate(varying, constants, LAYOUT)
        prev = text(rng, "0123456789abcdef", 64)
        # The same template for several events: only the varying values change.
        for _ in range(3):
            for name in varying:
                fields[name] = value(rng)
            assert template.hash(prev, [fields[n] for n in varying]) == event_hash(prev, fields, LAYOUT)


def test_a_consent_import_row() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, UTC)
    fields: dict[str, object] = {
        "subject_id": 42,
        "purpose_key": "marketing_email",
        "topic": "",
        "channel": "EMAIL",
        "action": "GRANT",
        "method": "IMPORT",
        "notice_version": None,
        "actor_kind": "SYSTEM",
        "actor_id": "import",
        "occurred_at": now - timedelta(days=3),
        "recorded_at": now,
        "sequence": 7,
    }
    varying = ["subject_id", "purpose_key", "action", "occurred_at", "sequence"]
    template = ChainTemplate(varying, {k: v for k, v in fields.items() if k not in varying}, LAYOUT)
    assert template.hash("ab" * 32, [fields[n] for n in varying]) == event_hash("ab" * 32, fields, LAYOUT)


@pytest.mark.parametrize("bad", ["lone \ud800", 2**53 + 1, float("nan"), datetime(2025, 1, 1), object()])
def test_refuses_what_event_hash_refuses(bad: object) -> None:
    template = ChainTemplate(["v"], {"c": 1}, LAYOUT)
    with pytest.raises(ValueError, match=r".") as refused:
        event_hash("0" * 64, {"v": bad, "c": 1}, LAYOUT)
    with pytest.raises(type(refused.value), match=re.escape(str(refused.value))):
        template.hash("0" * 64, [bad])


def test_each_name_once() -> None:
    with pytest.raises(ValueError, match="each hashed name once"):
        ChainTemplate(["a"], {"a": 1})
    with pytest.raises(ValueError, match="each hashed name once"):
        ChainTemplate(["hash"], {})


@pytest.mark.parametrize("fold_first", [0, 1])
def test_an_hour_repeated_when_clocks_go_back_is_two_times_whichever_comes_first(fold_first: int) -> None:
    # 01:30 on 1 November 2026 in New York happens twice (EDT, then EST): the two compare and hash equal
    # as datetimes, so no cache may hand one the other's text.
    zone = ZoneInfo("America/New_York")
    first, second = (datetime(2026, 11, 1, 1, 30, tzinfo=zone, fold=f) for f in (fold_first, 1 - fold_first))
    expected = {0: "2026-11-01T05:30:00.000000Z", 1: "2026-11-01T06:30:00.000000Z"}
    assert normalise(first) == expected[fold_first]
    assert normalise(second) == expected[1 - fold_first]
    template = ChainTemplate(["at"], {"kind": "x"}, LAYOUT)
    for moment in (first, second):
        assert template.hash("0" * 64, [moment]) == event_hash("0" * 64, {"at": moment, "kind": "x"}, LAYOUT)
