"""RFC 8785 (JCS) test vectors: the sample object, key ordering by UTF-16 code units, numbers."""

from __future__ import annotations

import json
import struct

import pytest

from dsr_gateway.domain.canonical_json import NotCanonicalisable, canonical_json, number_to_string


def double(bits: int) -> float:
    value: float = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    return value


def test_rfc8785_sample_object() -> None:
    # RFC 8785 §3.2.2 input, and the canonical output of §3.2.3 (here as Python values).
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    assert canonical_json(value) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )


def test_rfc8785_member_ordering_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3: the emoji (surrogates D83D DE00) sorts BEFORE U+FB33, unlike code-point order.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    text = canonical_json(value)
    assert list(json.loads(text)) == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert text.startswith('{"\\r":"Carriage Return","1":"One"')


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        # RFC 8785 Appendix B.
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
        (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xC340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
        (0x44B52D02C7E14AF6, "1e+23"),
        (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
        (0x444B1AE4D6E2EF4E, "999999999999999700000"),
        (0x444B1AE4D6E2EF4F, "999999999999999900000"),
        (0x444B1AE4D6E2EF50, "1e+21"),
        (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
        (0x3EB0C6F7A0B5ED8D, "0.000001"),
        (0x41B3DE4355555553, "333333333.3333332"),
        (0x41B3DE4355555554, "333333333.33333325"),
        (0x41B3DE4355555555, "333333333.3333333"),
        (0x41B3DE4355555556, "333333333.3333334"),
        (0x41B3DE4355555557, "333333333.33333343"),
        (0xBECBF647612F3696, "-0.0000033333333333333333"),
        (0x43143FF3C1CB0959, "1424953923781206.2"),
    ],
)
def test_rfc8785_numbers(bits: int, expected: str) -> None:
    assert number_to_string(double(bits)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (-17, "-17"),
        (2**53, "9007199254740992"),
        (1.0, "1"),
        ("\u007f\u2028é", '"\u007f\u2028é"'),  # only controls below U+0020 are escaped
        ("\b\t\n\f\r\x01\x1f", '"\\b\\t\\n\\f\\r\\u0001\\u001f"'),
        ((1, [2, {}]), "[1,[2,{}]]"),
        ({"b": {"d": 1, "c": None}, "a": []}, '{"a":[],"b":{"c":null,"d":1}}'),
    ],
)
def test_values(value: object, expected: str) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        double(0x7FFFFFFFFFFFFFFF),  # NaN
        double(0x7FF0000000000000),  # Infinity
        2**53 + 1,  # not exactly a double
        "\ud800",  # lone surrogate
        {1: "non-string key"},
        b"bytes",
        object(),
    ],
    ids=["nan", "infinity", "big-int", "lone-surrogate", "int-key", "bytes", "object"],
)
def test_refused(value: object) -> None:
    with pytest.raises(NotCanonicalisable):
        canonical_json(value)
