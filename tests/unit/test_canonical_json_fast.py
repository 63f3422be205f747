"""The fast path of canonical_json (objects of text, safe integers, booleans and null, written by the json
module) gives exactly the general RFC 8785 writer's text, and everything else still takes the general path."""

from __future__ import annotations

import random

import pytest

from dsr_gateway.domain import canonical_json as jcs


def general(value: object) -> str:
    parts: list[str] = []
    jcs._write(value, parts)
    return "".join(parts)


ASCII = "".join(chr(c) for c in range(128))
# Characters where writers tend to differ: controls, quote and backslash, C1 controls, DEL, the line and
# paragraph separators, the top of the BMP (sorts after surrogates in UTF-16), astral characters.
SPECIAL = '\x00\x01\x08\t\n\x0b\x0c\r\x1f"\\/\x7f\x80\x9f\u00e9\u2028\u2029\u20ac\ud7ff\ue000\ufb33\uffff'
ASTRAL = "\U00010000\U0001f600\U0010ffff"
ALPHABET = ASCII + SPECIAL + ASTRAL + "aé€"


def text(rng: random.Random, alphabet: str, longest: int = 8) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


def plain_value(rng: random.Random, depth: int = 0) -> object:
    kinds = ["null", "bool", "int", "text", "text"] + (["list", "object"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 1, -1, 2**53, -(2**53), rng.randint(-(2**53), 2**53)])
    if kind == "text":
        return text(rng, ALPHABET, 12)
    if kind == "list":
        return [plain_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return document(rng, depth + 1)


def document(rng: random.Random, depth: int = 0) -> dict[str, object]:
    return {text(rng, ALPHABET, 5): plain_value(rng, depth) for _ in range(rng.randint(0, 10))}


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"b": 1, "a": None, "c": True, "d": False, "e": ""},
        {"text": ASCII, "quote": '"', "back": "\\", "ctl": "\x00\x01\x1f\x7f\b\t\n\f\r"},
        {"big": 2**53, "small": -(2**53), "Z": "upper before lower", "_": 0},
        {"hash": "0" * 64, "occurred_at": "2025-03-01T10:00:00.000000Z", "notice_version": 3},
        {"b": {"z": [1, "x", None, {"y": True, "a": []}]}, "a": [], "c": ("t", 2)},
        {"s": "é€\u2028\u2029\x80\uffff", "é": 1, "\ufb33": 2, "\ue000": 3, "€": 4},
        {"astral": ASTRAL, "emoji": "\U0001f600 text"},
    ],
)
def test_fast_path_matches_the_general_writer(value: dict[str, object]) -> None:
    assert jcs._plain_object(value)
    assert jcs.canonical_json(value) == general(value)


def test_random_documents_match() -> None:
    rng = random.Random(8785)
    fast = 0
    for _ in range(3000):
        value = document(rng)
        fast += jcs._plain_object(value)
        assert jcs.canonical_json(value) == general(value)
    assert fast > 1000  # both paths were exercised


def test_names_outside_the_bmp_sort_by_utf16_code_units() -> None:
    # In code-point order U+FB33 comes before U+1F600; in UTF-16 (D83D DE00) it comes after.
    value = {"\ufb33": 1, "\U0001f600": 2, "a": 3}
    assert not jcs._plain_object(value)
    assert jcs.canonical_json(value) == '{"a":3,"\U0001f600":2,"\ufb33":1}'


def test_string_text_matches_the_general_writer() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        value = text(rng, ALPHABET, 20)
        assert jcs.string_text(value) == general(value)


@pytest.mark.parametrize(
    "value",
    [
        {"f": 1.5},
        {"n": 2**53 + 1},
        {"\U0001f600": 1},
        {"s": "a\ud800"},
        {"nested": {"a": 1.5}},
        {"list": [1, 2.5]},
        {1: "x"},
        ["a"],
    ],
)
def test_anything_else_takes_the_general_path(value: object) -> None:
    assert not jcs._plain_object(value)


def test_refusals_are_unchanged() -> None:
    with pytest.raises(jcs.NotCanonicalisable):
        jcs.canonical_json({"n": 2**53 + 1})
    with pytest.raises(jcs.NotCanonicalisable):
        jcs.canonical_json({"s": "\ud800"})
    with pytest.raises(jcs.NotCanonicalisable):
        jcs.string_text("\udfff")
