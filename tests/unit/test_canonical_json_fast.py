"""The fast path of canonical_json (flat objects of ASCII text, safe integers, booleans and null) gives
exactly the general RFC 8785 writer's text, and everything else still takes the general path."""

from __future__ import annotations

import random

import pytest

from dsr_gateway.domain import canonical_json as jcs


def general(value: object) -> str:
    parts: list[str] = []
    jcs._write(value, parts)
    return "".join(parts)


ASCII = "".join(chr(c) for c in range(128))


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"b": 1, "a": None, "c": True, "d": False, "e": ""},
        {"text": ASCII, "quote": '"', "back": "\\", "ctl": "\x00\x01\x1f\x7f\b\t\n\f\r"},
        {"big": 2**53, "small": -(2**53), "Z": "upper before lower", "_": 0},
        {"hash": "0" * 64, "occurred_at": "2025-03-01T10:00:00.000000Z", "notice_version": 3},
        {"b": {"z": [1, "x", None, {"y": True, "a": []}]}, "a": [], "c": ("t", 2)},
    ],
)
def test_fast_path_matches_the_general_writer(value: dict[str, object]) -> None:
    assert jcs._flat_ascii(value)
    assert jcs.canonical_json(value) == general(value)


def test_random_flat_documents_match() -> None:
    rng = random.Random(8785)
    for _ in range(500):
        value: dict[str, object] = {}
        for _ in range(rng.randint(0, 12)):
            key = "".join(rng.choice(ASCII) for _ in range(rng.randint(0, 6)))
            value[key] = rng.choice(
                [
                    None,
                    True,
                    False,
                    rng.randint(-(2**53), 2**53),
                    "".join(rng.choice(ASCII) for _ in range(9)),
                ]
            )
        assert jcs.canonical_json(value) == general(value)


@pytest.mark.parametrize(
    "value",
    [
        {"f": 1.5},
        {"n": 2**53 + 1},
        {"é": 1},
        {"s": "é"},
        {"nested": {"a": 1.5}},
        {"list": [1, "é"]},
        {1: "x"},
        ["a"],
    ],
)
def test_anything_else_takes_the_general_path(value: object) -> None:
    assert not jcs._flat_ascii(value)


def test_refusals_are_unchanged() -> None:
    with pytest.raises(jcs.NotCanonicalisable):
        jcs.canonical_json({"n": 2**53 + 1})
    with pytest.raises(jcs.NotCanonicalisable):
        jcs.canonical_json({"s": "\ud800"})
