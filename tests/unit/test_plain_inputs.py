"""Inputs marked `plain_input` are built exactly as Strawberry's own conversion builds them."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import pytest
import strawberry

from dsr_gateway.graphql.plain_inputs import plain_input


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@plain_input
@strawberry.input
class PlainLeaf:
    name: str
    colour: Colour | None = None
    flag: bool = False


@plain_input
@strawberry.input
class PlainRoot:
    leaves: list[PlainLeaf]
    bare: str | None  # no default: None when omitted
    maybe: strawberry.Maybe[str]
    tags: list[str] | None = None
    nested: PlainLeaf | None = None
    count: int | None = strawberry.field(default=None, name="howMany")
    note: str | None = None


@strawberry.input
class SlowLeaf:
    name: str
    colour: Colour | None = None
    flag: bool = False


@strawberry.input
class SlowRoot:
    leaves: list[SlowLeaf]
    bare: str | None  # no default: None when omitted
    maybe: strawberry.Maybe[str]
    tags: list[str] | None = None
    nested: SlowLeaf | None = None
    count: int | None = strawberry.field(default=None, name="howMany")
    note: str | None = None


BUILT: list[tuple[Any, Any]] = []


@strawberry.type
class Query:
    @strawberry.field
    def both(self, plain: PlainRoot, slow: SlowRoot) -> bool:
        BUILT.append((plain, slow))
        return True


SCHEMA = strawberry.Schema(query=Query)
QUERY = "query($a: PlainRoot!, $b: SlowRoot!) { both(plain: $a, slow: $b) }"


def _shape(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _shape(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"leaves": []},
        {"leaves": [{"name": "a"}], "note": None},
        {"leaves": [{"name": "a", "colour": "RED", "flag": True}, {"name": "b", "colour": None}]},
        {"leaves": [{"name": "a"}], "tags": ["x"], "nested": {"name": "n", "colour": "BLUE"}, "howMany": 3},
        {"leaves": [], "bare": "b", "maybe": "m"},
    ],
)
async def test_a_plain_input_is_built_like_strawberry_builds_it(value: dict[str, Any]) -> None:
    BUILT.clear()
    result = await SCHEMA.execute(QUERY, variable_values={"a": value, "b": value})
    assert result.errors is None, result.errors
    ((plain, slow),) = BUILT
    assert _shape(plain) == _shape(slow)
    assert isinstance(plain, PlainRoot)
    assert all(isinstance(leaf, PlainLeaf) for leaf in plain.leaves)
    assert plain.nested is None or isinstance(plain.nested, PlainLeaf)
    assert all(leaf.colour is None or isinstance(leaf.colour, Colour) for leaf in plain.leaves)


async def test_an_explicit_null_for_a_maybe_field_is_refused_as_strawberry_refuses_it() -> None:
    value = {"leaves": [], "maybe": None}
    plain = await SCHEMA.execute(
        "query($a: PlainRoot!) { both(plain: $a, slow: {leaves: []}) }", {"a": value}
    )
    slow = await SCHEMA.execute("query($b: SlowRoot!) { both(plain: {leaves: []}, slow: $b) }", {"b": value})
    assert plain.errors
    assert [e.message for e in plain.errors] == [e.message for e in slow.errors or []]
