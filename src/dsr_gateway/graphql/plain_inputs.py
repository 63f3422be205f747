"""Input types built straight from the GraphQL input value, with each field's conversion worked out once.

Strawberry converts an input value field by field and resolves every field's type again on each call
(~10 µs a field: a quarter of a `setConsents` mutation's GraphQL cost). For an input made of scalars,
enums (graphql-core has already turned them into members), lists and other such inputs, that work is
the same every time: `plain_input` sets the type's `from_input` hook (Strawberry's hook for types that
build their own value) to a builder prepared on first use. A field the client omitted keeps the class's
default, as with Strawberry's own conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

T = TypeVar("T")
Convert = Callable[[Any, InputContext], Any]


def _identity(value: Any, _context: InputContext) -> Any:
    return value


def _converter(type_: Any) -> Convert:
    """How to convert one value of this (resolved) field type; `None` stays `None`."""
    if isinstance(type_, StrawberryMaybe):
        # Maybe[T] wraps values in Some() and refuses an explicit null: Strawberry's own conversion.
        maybe = type_
        return lambda value, context: context.convert(value, maybe)
    while isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type)
        if item is _identity:
            return lambda value, _context: None if value is None else list(value)
        return lambda value, context: None if value is None else [item(v, context) for v in value]
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return _identity
    if has_object_definition(type_):
        nested = type_
        return lambda value, context: None if value is None else context.convert(value, nested)
    if isinstance(type_, type) and type_ in (str, int, float, bool):
        return _identity
    # Anything else (custom scalars, lazy types ...): Strawberry's own conversion.
    return lambda value, context: None if value is None else context.convert(value, type_)


class _Builder:
    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self._definition = definition
        self._fields: list[tuple[str, str, Convert]] | None = None
        # As Strawberry does: a field without a default reads None when omitted (graphql-core has already
        # refused an omitted non-null field).
        self._implicit = {
            field.python_name: None
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        }

    def _prepare(self, context: InputContext) -> list[tuple[str, str, Convert]]:
        names = context.config.name_converter
        return [
            (
                names.from_field(field),
                field.python_name,
                _converter(field.resolve_type(type_definition=self._definition)),
            )
            for field in self._definition.fields
        ]

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        fields = self._fields
        if fields is None:
            fields = self._fields = self._prepare(context)
        kwargs = dict(self._implicit)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context)
        return cls(**kwargs)


def plain_input(cls: type[T]) -> type[T]:
    """Mark a `@strawberry.input` class as built by a prepared builder (see the module's docstring)."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    definition.from_input = _Builder(definition)
    return cls
