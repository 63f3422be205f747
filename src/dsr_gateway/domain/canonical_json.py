"""Canonical JSON per RFC 8785 (the JSON Canonicalization Scheme, JCS), standard library only.

The same value always gives the same bytes, whoever serialises it, so a hash over it can be recomputed years
later by any JCS implementation (Python `rfc8785`, Java/Go/JS `json-canonicalize` ...):

- objects: members sorted by their names compared as arrays of UTF-16 code units (RFC 8785 §3.2.3), no
  whitespace; arrays keep their order;
- strings: ECMAScript `JSON.stringify` escaping (only `"`, `\\` and U+0000..U+001F are escaped, with the
  short forms \\b \\t \\n \\f \\r and lower-case `\\u00xx` for the rest); lone surrogates are refused;
- numbers: IEEE-754 doubles printed as ECMAScript `Number.prototype.toString` does (shortest round-trip
  digits, exponent outside 1e-6 <= |x| < 1e21, `-0` as `0`); NaN and infinities are refused; integers
  must be exactly representable as doubles (|n| <= 2**53), larger ones are refused rather than rounded.
- literals `true`, `false`, `null`.

Accepted Python values: None, bool, int, float, str, lists/tuples and dicts with str keys. Anything else
(datetimes, enums ...) must be turned into one of these first (see `audit_chain.normalise`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring as _encode_string  # the C encoder json uses

MAX_SAFE_INTEGER = 2**53


class NotCanonicalisable(ValueError):
    """The value has no RFC 8785 form (NaN, infinity, a huge integer, a lone surrogate, a foreign type)."""


def canonical_json(value: object) -> str:
    """The RFC 8785 text of `value`; encode it as UTF-8 before hashing or signing."""
    if type(value) is str:
        return string_text(value)
    if _plain_object(value):
        # The common case (a chained event's document): `json.dumps` gives the same text, much faster.
        return _PLAIN.encode(value)
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


# For an object (nested objects and arrays too) holding only null, booleans, safe integers and text,
# RFC 8785 and `json.dumps(sort_keys=True, ensure_ascii=False)` agree when:
# - no name holds a character outside the Basic Multilingual Plane (nor a surrogate): only then do
#   code-point order (json) and UTF-16 code-unit order (RFC 8785) sort names the same;
# - no text holds a lone surrogate (RFC 8785 refuses it; json would write it);
# json escapes exactly `"`, `\\` and U+0000..U+001F, with the same short forms and lower-case `\u00xx`,
# and writes every other character as itself, as RFC 8785 does. Anything else (floats, huge integers,
# other types) takes the general path.
_PLAIN = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_BMP = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")
_MAX_DEPTH = 32


def _plain_object(value: object, depth: int = 0) -> bool:
    """True for the objects whose RFC 8785 text `json.dumps` writes identically (see above)."""
    if type(value) is not dict or depth > _MAX_DEPTH:
        return False
    for key, item in value.items():
        if type(key) is not str or not (key.isascii() or _NOT_BMP.search(key) is None):
            return False
        if not _plain(item, depth):
            return False
    return True


def _plain(item: object, depth: int) -> bool:
    if item is None or item is True or item is False:
        return True
    if isinstance(item, str):
        return type(item) is str and (item.isascii() or _SURROGATE.search(item) is None)
    if isinstance(item, int):
        return type(item) is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER
    if type(item) is dict:
        return _plain_object(item, depth + 1)
    if type(item) is list or type(item) is tuple:
        return depth < _MAX_DEPTH and all(_plain(v, depth + 1) for v in item)
    return False


def string_text(text: str) -> str:
    """The RFC 8785 text of one string (quoted and escaped), as `canonical_json(text)` gives it."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return _encode_string(text)
    return _string(text)  # refuses the lone surrogate


def canonical_bytes(value: object) -> bytes:
    return canonical_json(value).encode("utf-8")


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, float):
        out.append(number_to_string(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        _object(value, out)
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise NotCanonicalisable(f"{type(value).__name__} has no JSON form; convert it first")


def _object(value: Mapping[object, object], out: list[str]) -> None:
    members: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise NotCanonicalisable(f"object member names must be strings, not {type(key).__name__}")
        members[key] = item
    out.append("{")
    for index, key in enumerate(sorted(members, key=utf16_sort_key)):
        if index:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _write(members[key], out)
    out.append("}")


def utf16_sort_key(name: str) -> bytes:
    """Big-endian UTF-16 bytes compare exactly as the arrays of UTF-16 code units JCS sorts by."""
    return _check_surrogates(name).encode("utf-16-be")


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    _check_surrogates(text)
    escaped: list[str] = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            escaped.append(_SHORT_ESCAPES[char])
        elif char < " ":
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    escaped.append('"')
    return "".join(escaped)


def _check_surrogates(text: str) -> str:
    # A Python str holds code points; a surrogate code point here can only be a lone one.
    if any("\ud800" <= char <= "\udfff" for char in text):
        raise NotCanonicalisable("the string contains a lone surrogate, which is not valid Unicode")
    return text


def _integer(value: int) -> str:
    if abs(value) > MAX_SAFE_INTEGER:
        raise NotCanonicalisable(
            f"integer {value} cannot be represented exactly as an IEEE-754 double; store it as a string"
        )
    return str(value)


def number_to_string(value: float) -> str:
    """ECMAScript Number::toString(value), the form RFC 8785 §3.2.2.3 requires."""
    if math.isnan(value) or math.isinf(value):
        raise NotCanonicalisable("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"  # also -0
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digits that round-trip, closest to the value: what ECMAScript needs.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or "0")  # digits d1 d2 ... with the decimal point after `point`
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        text = (digits if k == 1 else f"{digits[0]}.{digits[1:]}") + exp
    return sign + text
