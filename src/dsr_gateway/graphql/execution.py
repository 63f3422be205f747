"""Completing plain data objects without the per-field machinery.

graphql-core completes every object of a list field by field: a resolve-info object, the resolver, and a
completion per field. For objects whose selected fields are all plain attributes holding scalars or enums
(a `consentCheck` of 1,000 ids returns 1,000 such `ConsentDecision`s) that machinery was about a third of
the request. `GatewayExecutionContext` builds such objects directly: the same resolver (strawberry's
attribute read) and the same leaf coercion per field, without the rest. Anything else (a field with a
resolver or arguments, a nested object, a null where the schema forbids it, a coercion error, @defer,
resolve middleware) goes the ordinary way, so results and errors are the same; tests compare both.
A plan of how to complete a type's selection is kept per request and, when nothing of the request can
change it, shared by the requests of one parsed document.

The execution context also holds graphql-core's resolver helpers weakly (no reference cycle per request)
and lets long lists of strings in the variables skip item-by-item coercion (graphql/variable_lists.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from inspect import isawaitable
from operator import attrgetter
from typing import Any

from graphql import (
    DocumentNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    SelectionSetNode,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from dsr_gateway.graphql.variable_lists import put_back, set_aside

# Per selected field: (response key, how to read it from the object (None: __typename), its leaf
# coercion, nullable).
Step = tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any] | None, bool]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to complete one object type's selection directly; `origin` is the type's own class."""

    steps: tuple[Step, ...]
    origin: type | None


TYPENAME = "__typename"


class GatewayExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core keeps two of its own bound methods on itself (the resolvers' `async_helpers`): a
        # reference cycle, so the whole request (context, HTTP request, loaders, results) outlived it
        # until the garbage collector's next pass (~8% of a write's CPU went to those passes). Through a
        # weak reference the request is freed as it ends; the execution is alive while resolvers run.
        this = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: _alive(this).gather_async_work(values),
            track=lambda values: _alive(this).track_async_work(values),
        )
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[Any, Plan | None]] = {}
        manager = self.middleware_manager
        self._plain_allowed = manager is None or not manager.middlewares

    @classmethod
    def build(
        cls,
        schema: Any,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # Long lists of strings skip graphql-core's item-by-item coercion (graphql/variable_lists.py).
        raw, aside = set_aside(document, operation_name, raw_variable_values)
        built = super().build(
            schema, document, root_value, context_value, raw, operation_name, *args, **kwargs
        )
        if aside and not isinstance(built, list):  # a list: errors (of other variables)
            put_back(built.variable_values, aside)
        return built

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list) if self._plain_allowed else None
        if plan is not None and not isinstance(result, Exception) and not isawaitable(result):
            completed = _complete_plain(plan, return_type, result)
            if completed is not None:
                return completed
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Any,
        position_context: Any,
    ) -> Any:
        # A list of plain objects in one loop, without a path, an awaitable check and a recursion per item.
        inner, nullable = item_type, True
        if isinstance(inner, GraphQLNonNull):
            inner, nullable = inner.of_type, False
        if (
            self._plain_allowed
            and isinstance(inner, GraphQLObjectType)
            and isinstance(items, list | tuple)
            and self.get_stream_usage(field_details_list, path) is None
        ):
            plan = self._plan(inner, field_details_list)
            if plan is not None:
                completed = _complete_all(plan, inner, items, nullable)
                if completed is not None:
                    return completed
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _plan(self, return_type: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        # Keyed like graphql-core's own sub-field memo: the list object lives as long as the operation.
        key = (return_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        # Across requests of one (cached) document: keyed by the selection's AST nodes, which the entry
        # keeps alive so their ids are not reused; only for selections nothing of the request can change.
        nodes = tuple(d.node for d in field_details_list)
        shared_key = (return_type, tuple(map(id, nodes)))
        shared = _SHARED_PLANS.get(shared_key)
        if shared is not None:
            plan = shared[1]
        else:
            plan = _plan_for(return_type, self.collect_subfields(return_type, field_details_list))
            if _request_independent(field_details_list, self.fragments):
                if len(_SHARED_PLANS) >= MAX_SHARED_PLANS:
                    _SHARED_PLANS.clear()
                _SHARED_PLANS[shared_key] = (nodes, plan)
        self._plans[key] = (field_details_list, plan)
        return plan


# A completion plan depends on the selection, the schema's type and, through directives (@skip(if: $v),
# @include, @defer) and fragment variables, on the request; without those it is the same every time.
_SHARED_PLANS: dict[tuple[GraphQLObjectType, tuple[int, ...]], tuple[tuple[Any, ...], Plan | None]] = {}
MAX_SHARED_PLANS = 1024


def _request_independent(field_details_list: Any, fragments: Mapping[str, Any]) -> bool:
    for details in field_details_list:
        if details.defer_usage is not None or details.fragment_variable_values is not None:
            return False
        if _has_directives(details.node.selection_set, fragments, set()):
            return False
    return True


def _has_directives(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, Any], seen: set[str]
) -> bool:
    """Whether anything in the selection (fragments followed) carries a directive."""
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if selection.directives:
            return True
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if name in seen or fragment is None:
                continue  # a cycle or an unknown fragment: validation's to refuse
            seen.add(name)
            definition = fragment.definition
            if definition.directives or definition.variable_definitions:
                return True
            if _has_directives(definition.selection_set, fragments, seen):
                return True
        elif _has_directives(getattr(selection, "selection_set", None), fragments, seen):
            return True
    return False


def _alive(reference: weakref.ref[GatewayExecutionContext]) -> GatewayExecutionContext:
    execution = reference()
    assert execution is not None, "a resolver outlived its execution"
    return execution


def _plan_for(return_type: GraphQLObjectType, collected: Any) -> Plan | None:
    if return_type.is_type_of is not None or collected.new_defer_usages:
        return None
    steps: list[Step] = []
    for response_key, details in collected.grouped_field_set.items():
        if any(d.defer_usage is not None for d in details):
            return None
        node = details[0].node
        name = node.name.value
        if name == TYPENAME:
            steps.append((response_key, None, None, False))
            continue
        field = return_type.fields.get(name)
        if field is None or node.arguments or field.args or node.selection_set is not None:
            return None
        resolve = field.resolve
        # A plain attribute read: no resolver of its own and no extension (permission classes are
        # extensions); strawberry's `_is_default` mark alone is also set on fields with permissions.
        definition = field.extensions.get("strawberry-definition") if field.extensions else None
        if resolve is None or definition is None or not getattr(definition, "is_basic_field", False):
            return None
        field_type, nullable = field.type, True
        if isinstance(field_type, GraphQLNonNull):
            field_type, nullable = field_type.of_type, False
        if not is_leaf_type(field_type):
            return None
        # What strawberry's resolver of a basic field does (`default_resolver(source, python_name)`),
        # without its three calls, when the default resolver is the built-in getattr.
        read = attrgetter(definition.python_name) if definition.default_resolver is getattr else None
        steps.append((response_key, read or _call_with_no_info(resolve), _coercer(field_type), nullable))
    strawberry_type = return_type.extensions.get("strawberry-definition") if return_type.extensions else None
    return Plan(tuple(steps), getattr(strawberry_type, "origin", None))


def _call_with_no_info(resolve: Callable[..., Any]) -> Callable[[Any], Any]:
    return lambda source: resolve(source, None)


def _coercer(leaf_type: GraphQLLeafType) -> Callable[[Any], Any]:
    """The leaf's output coercion; for enums and booleans (few, immutable values) remembered per value."""
    coerce = leaf_type.coerce_output_value
    if not (isinstance(leaf_type, GraphQLEnumType) or leaf_type is GraphQLBoolean):
        return coerce
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        found = seen.get(value, _NOT_SEEN)
        if found is _NOT_SEEN:
            found = coerce(value)
            if len(seen) < 64:
                seen[value] = found
        return found

    return remembered


_NOT_SEEN = object()


def _complete_all(
    plan: Plan, return_type: GraphQLObjectType, items: list[Any] | tuple[Any, ...], nullable: bool
) -> list[Any] | None:
    completed: list[Any] = []
    append = completed.append
    origin = plan.origin
    for item in items:
        if type(item) is not origin:  # the type's own class is neither null, an error nor awaitable
            if item is None and nullable:
                append(None)
                continue
            if item is None or isinstance(item, Exception) or isawaitable(item):
                return None  # errors and awaitables are the ordinary path's to report and await
        value = _complete_plain(plan, return_type, item)
        if value is None:
            return None  # the ordinary path completes the whole list again and reports the error
        append(value)
    return completed


def _complete_plain(plan: Plan, return_type: GraphQLObjectType, source: Any) -> dict[str, Any] | None:
    """The completed object, or None to let the ordinary path complete it (and report any error)."""
    completed: dict[str, Any] = {}
    try:
        for response_key, read, coerce, nullable in plan.steps:
            if read is None:
                completed[response_key] = return_type.name
                continue
            value = read(source)
            if value is None:
                if not nullable:
                    return None
                completed[response_key] = None
                continue
            assert coerce is not None
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                return None
            completed[response_key] = coerced
    except Exception:  # the ordinary path raises it again, located, with its path
        return None
    return completed
