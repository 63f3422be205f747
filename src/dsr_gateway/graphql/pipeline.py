"""One schema extension per request: limits, parse and validation caches, and error masking.

Strawberry's own extensions each cost a context manager per hook per request, and the limiters
(`QueryDepthLimiter`, `MaxAliasesLimiter`) build a new validation-rule class each time they are made, so
made per request they change the validation cache key on every request and nothing is ever reused.
Here the rule classes are made once per schema and the caches are keyed by the query text (hashing a
parsed document walks the whole tree), so a query seen before is neither parsed nor validated again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, StringValueNode
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaskErrors
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

CACHE_SIZE = 512
NUL_MESSAGE = "Text may not contain the NUL character (\\u0000); remove it and send the request again."


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        try:
            return "\x00" in "".join(value)  # a list of strings (a batch check's ids): one pass in C
        except TypeError:
            return any(_has_nul(v) for v in value)
    return False


class NoNulCharacters(ASTValidationRule):
    """PostgreSQL text cannot hold NUL: refuse it in the request, never let the database fail on it."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError(NUL_MESSAGE, node))


class BoundedCache:
    """A dict that forgets its oldest entry when full (query texts come from clients: keep it bounded)."""

    def __init__(self, maxsize: int = CACHE_SIZE) -> None:
        self._items: dict[str, Any] = {}
        self._maxsize = maxsize

    def get(self, key: str | None) -> Any:
        return None if key is None else self._items.get(key)

    def put(self, key: str | None, value: Any) -> None:
        if key is None:
            return
        if len(self._items) >= self._maxsize:
            self._items.pop(next(iter(self._items)))
        self._items[key] = value


def validation_rules(
    *, max_depth: int, max_aliases: int, introspection: bool
) -> tuple[type[ASTValidationRule], ...]:
    """The extra rules, made once: the same classes on every request keep the validation cache useful."""
    rules: list[type[ASTValidationRule]] = [
        depth_validator(max_depth, None),
        aliases_validator(max_aliases),
        NoNulCharacters,
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


class RequestPipeline(MaskErrors):
    """Adds the rules and the token limit, serves parse and validation from caches, masks our errors."""

    def __init__(
        self,
        *,
        rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        documents: BoundedCache,
        validations: BoundedCache,
        should_mask_error: Callable[[GraphQLError], bool],
        error_message: str,
    ) -> None:
        super().__init__(should_mask_error=should_mask_error, error_message=error_message)
        self._rules = tuple(rules)
        self._max_tokens = max_tokens
        self._documents = documents
        self._validations = validations

    def _process_result(self, result: object) -> None:
        # MaskErrors asks `isinstance(result, <a runtime Protocol>)`, which inspects the protocol's
        # members on every call (~4% of a mutation's time); this asks for the one attribute it needs.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self._rules
        context.parse_options["max_tokens"] = self._max_tokens
        yield from super().on_operation()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        document: DocumentNode | None = self._documents.get(context.query)
        if document is not None:
            context.graphql_document = document
            yield
            return
        yield  # Strawberry parses; a syntax error never reaches the cache.
        if context.graphql_document is not None:
            self._documents.put(context.query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if _has_nul(context.variables):
            # Per request, never cached: the same query text is fine with other variables.
            context.pre_execution_errors = [GraphQLError(NUL_MESSAGE)]
            yield
            return
        errors: list[GraphQLError] | None = self._validations.get(context.query)
        if errors is not None:
            context.pre_execution_errors = list(errors)
            yield
            return
        yield  # Strawberry validates with the rules above.
        if context.pre_execution_errors is not None:
            self._validations.put(context.query, list(context.pre_execution_errors))
