"""Long lists of strings in the variables, taken as they are instead of item by item.

graphql-core coerces a variable's value item by item: for a `consentCheck` of 1,000 ids (`[String!]!`) that
was ~0.7 ms, a tenth of the request, to return a copy of the same list. A list of strings given for a
variable declared `[String!]` or `[String!]!` cannot fail to coerce and coerces to an equal list, so
`set_aside` hands graphql-core an empty list in its place and `put_back` puts a copy of the given list into
the coerced values (and the original into the sources) afterwards. Any other value or type (a short list,
an item that is not a `str`, `[String]`, `[ID!]`, an input object) is coerced by graphql-core as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import DocumentNode, ListTypeNode, NamedTypeNode, NonNullTypeNode, OperationDefinitionNode
from graphql.execution.values import VariableValues, VariableValueSource

# Below this length the item-by-item coercion costs too little to bother.
MIN_LENGTH = 32


def _is_string_list(type_node: Any) -> bool:
    """`[String!]` or `[String!]!` (String is built in: a schema cannot redefine it)."""
    if isinstance(type_node, NonNullTypeNode):
        type_node = type_node.type
    if not isinstance(type_node, ListTypeNode) or not isinstance(type_node.type, NonNullTypeNode):
        return False
    item = type_node.type.type
    return isinstance(item, NamedTypeNode) and item.name.value == "String"


def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None  # several: graphql-core's error to give
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def set_aside(
    document: DocumentNode, operation_name: str | None, raw: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """The raw variables with each long list of strings of a `[String!]` variable replaced by `[]`, and
    the lists replaced (nothing replaced: the raw variables themselves)."""
    if not raw:
        return raw, {}
    operation = _operation(document, operation_name)
    if operation is None or not operation.variable_definitions:
        return raw, {}
    aside: dict[str, list[str]] = {}
    for definition in operation.variable_definitions:
        name = definition.variable.name.value
        value = raw.get(name)
        if (
            type(value) is list
            and len(value) >= MIN_LENGTH
            and _is_string_list(definition.type)
            and all(type(item) is str for item in value)
        ):
            aside[name] = value
    if not aside:
        return raw, {}
    return {**raw, **{name: [] for name in aside}}, aside


def put_back(values: VariableValues, aside: Mapping[str, list[str]]) -> None:
    """The lists set aside, as graphql-core would have coerced them (a copy) and recorded them."""
    for name, value in aside.items():
        values.coerced[name] = list(value)
        source = values.sources.get(name)
        if source is not None:
            values.sources[name] = VariableValueSource(source.signature, value)
