"""Long lists of strings skip graphql-core's item-by-item coercion and come out exactly as it would give
them; anything else is coerced (or refused, with the same errors) by graphql-core itself."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import build_schema, graphql_sync, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as ExecutionContext

from dsr_gateway.graphql.execution import GatewayExecutionContext
from dsr_gateway.graphql.variable_lists import MIN_LENGTH, set_aside

SCHEMA = build_schema(
    """
    type Query {
      strict(ids: [String!]!): Int
      maybe(ids: [String!]): Int
      loose(ids: [String]): Int
      numbers(ids: [Int!]!): Int
      named(ids: [ID!]!): Int
    }
    """
)
LONG = [f"id-{i}" for i in range(MIN_LENGTH + 8)]
SHORT = LONG[: MIN_LENGTH - 1]

# (id, query, variables, operation name, whether the list is set aside)
CASES: list[tuple[str, str, dict[str, Any], str | None, bool]] = [
    ("[String!]! long", "query($a: [String!]!) { strict(ids: $a) }", {"a": LONG}, None, True),
    ("[String!] long", "query($a: [String!]) { maybe(ids: $a) }", {"a": LONG}, None, True),
    ("[String!] null", "query($a: [String!]) { maybe(ids: $a) }", {"a": None}, None, False),
    ("short", "query($a: [String!]!) { strict(ids: $a) }", {"a": SHORT}, None, False),
    ("an int among them", "query($a: [String!]!) { strict(ids: $a) }", {"a": [*LONG, 7]}, None, False),
    ("a null among them", "query($a: [String!]!) { strict(ids: $a) }", {"a": [*LONG, None]}, None, False),
    ("a list among them", "query($a: [String!]!) { strict(ids: $a) }", {"a": [*LONG, ["x"]]}, None, False),
    ("[String] long", "query($a: [String]) { loose(ids: $a) }", {"a": LONG}, None, False),
    ("[ID!]! long", "query($a: [ID!]!) { named(ids: $a) }", {"a": LONG}, None, False),
    ("[Int!]! with strings", "query($a: [Int!]!) { numbers(ids: $a) }", {"a": LONG}, None, False),
    ("a string, not a list", "query($a: [String!]!) { strict(ids: $a) }", {"a": "one"}, None, False),
    ("missing", "query($a: [String!]!) { strict(ids: $a) }", {}, None, False),
    (
        "named operation",
        "query A($a: [Int!]!) { numbers(ids: $a) } query B($a: [String!]!) { strict(ids: $a) }",
        {"a": LONG},
        "B",
        True,
    ),
    (
        "the other operation",
        "query A($a: [Int!]!) { numbers(ids: $a) } query B($a: [String!]!) { strict(ids: $a) }",
        {"a": LONG},
        "A",
        False,
    ),
    (
        "two operations, no name",
        "query A($a: [String!]!) { strict(ids: $a) } query B($a: [String!]!) { strict(ids: $a) }",
        {"a": LONG},
        None,
        False,
    ),
    (
        "another variable wrong",
        "query($a: [String!]!, $n: Int!) { strict(ids: $a) numbers(ids: [$n]) }",
        {"a": LONG, "n": "x"},
        None,
        True,
    ),
]


def _built(cls: type[ExecutionContext], query: str, variables: dict[str, Any], name: str | None) -> Any:
    built = cls.build(SCHEMA, parse(query), raw_variable_values=variables, operation_name=name)
    if isinstance(built, list):
        return [error.formatted for error in built]
    # Signatures are made afresh per build (their wrapping types compare by identity): compare their text.
    sources = {
        name: (str(source.signature.type), source.signature.default_value, source.value)
        for name, source in built.variable_values.sources.items()
    }
    return built.variable_values.coerced, sources


@pytest.mark.parametrize(
    ("query", "variables", "name", "aside"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_the_variables_come_out_as_graphql_core_gives_them(
    query: str, variables: dict[str, Any], name: str | None, aside: bool
) -> None:
    _, set_apart = set_aside(parse(query), name, variables)
    assert bool(set_apart) is aside
    ours = _built(GatewayExecutionContext, query, variables, name)
    assert ours == _built(ExecutionContext, query, variables, name)
    if aside and not isinstance(ours, list):
        coerced, _ = ours
        assert coerced["a"] is not variables["a"]  # a copy, as graphql-core's coercion makes


def test_a_query_runs_the_same_with_a_long_list() -> None:
    result = graphql_sync(
        SCHEMA,
        "query($a: [String!]!) { strict(ids: $a) }",
        root_value={"strict": lambda _info, ids: len(ids)},
        variable_values={"a": LONG},
        executor_class=GatewayExecutionContext,
    )
    assert result.errors is None
    assert result.data == {"strict": len(LONG)}
