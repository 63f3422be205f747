"""The plain-object fast path answers exactly what graphql-core's ordinary completion answers."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import strawberry
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig

from dsr_gateway.graphql.execution import GatewayExecutionContext


@strawberry.enum
class Reason(enum.Enum):
    GRANTED = "GRANTED"
    NOT_GIVEN = "NOT_GIVEN"


@strawberry.type
class Inner:
    code: int


class Never(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class NeverAsync(BasePermission):
    message = "not for you either"

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Guarded:
    open: str
    secret: str = strawberry.field(permission_classes=[Never])
    also_secret: str = strawberry.field(permission_classes=[NeverAsync])


@strawberry.type
class Decision:
    subject_id: str
    allowed: bool
    reason: Reason
    score: float | None = None
    inner: Inner | None = None

    @strawberry.field
    def shout(self) -> str:
        return self.subject_id.upper()

    @strawberry.field
    def padded(self, width: int) -> str:
        return self.subject_id.ljust(width, ".")


def decisions() -> list[Decision]:
    return [
        Decision(subject_id="a", allowed=True, reason=Reason.GRANTED, score=0.5, inner=Inner(code=1)),
        Decision(subject_id="b", allowed=False, reason=Reason.NOT_GIVEN),
    ]


def broken() -> list[Any]:
    # A null in a non-null field and a value no enum member matches: errors, located by path.
    return [
        Decision(subject_id="a", allowed=True, reason=Reason.GRANTED),
        Decision(subject_id=None, allowed=True, reason=Reason.GRANTED),  # type: ignore[arg-type]
        Decision(subject_id="c", allowed=True, reason="SOMETHING_ELSE"),  # type: ignore[arg-type]
    ]


@strawberry.type
class Query:
    @strawberry.field
    def decisions(self) -> list[Decision]:
        return decisions()

    @strawberry.field
    def broken(self) -> list[Decision | None]:
        return broken()

    @strawberry.field
    def strict(self) -> list[Decision]:
        return broken()[:2]

    @strawberry.field
    def gaps(self) -> list[Decision | None]:
        return [decisions()[0], None, decisions()[1]]

    @strawberry.field
    def no_gaps(self) -> list[Decision]:
        return [decisions()[0], None]  # type: ignore[list-item]

    @strawberry.field
    def one(self) -> Decision:
        return decisions()[1]

    @strawberry.field
    def guarded(self) -> list[Guarded]:
        return [Guarded(open="a", secret="s", also_secret="t")]

    @strawberry.field
    def failing(self) -> list[Decision | None]:
        return [ValueError("boom"), decisions()[0]]  # type: ignore[list-item]

    @strawberry.field
    def failing_strict(self) -> list[Decision]:
        return [ValueError("boom")]  # type: ignore[list-item]


QUERIES = [
    "{ decisions { subjectId allowed reason } }",
    "{ decisions { __typename id: subjectId allowed allowedAgain: allowed reason score } }",
    "{ decisions { ...D } } fragment D on Decision { subjectId reason }",
    "query($s: Boolean!) { decisions { subjectId @include(if: $s) allowed @skip(if: $s) } }",
    "{ decisions { subjectId shout } }",  # a resolver: the ordinary path
    "{ decisions { padded(width: 3) } }",  # arguments: the ordinary path
    "{ decisions { subjectId inner { code } } }",  # a nested object: the ordinary path
    "{ broken { subjectId allowed reason } }",
    "{ strict { subjectId allowed } }",
    "{ gaps { subjectId reason } }",  # a null item where the list allows it
    "{ noGaps { subjectId reason } }",  # a null item where it does not: the error, located
    "{ one { __typename subjectId reason } }",  # a single object, not a list
    "{ guarded { open secret } }",  # a permission on a field without a resolver: checked
    "{ guarded { open alsoSecret } }",  # an async permission: checked and awaited
    "{ guarded { open } }",
    "{ failing { __typename } }",  # an error as an item, with nothing but __typename selected
    "{ failing { subjectId } }",
    "{ failingStrict { __typename } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_the_fast_path_answers_like_graphql_core(query: str) -> None:
    ordinary = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query, execution_context_class=GatewayExecutionContext)
    variables = {"s": True}
    expected = await ordinary.execute(query, variable_values=variables)
    got = await fast.execute(query, variable_values=variables)
    assert got.data == expected.data
    if any(word in query for word in ("broken", "strict", "Strict", "secret", "Secret", "failing")):
        assert expected.errors  # the comparison covers errors, not only data
    assert [(e.message, e.path) for e in got.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]


async def test_plain_objects_skip_the_per_field_resolution() -> None:
    resolved: list[str] = []

    class Watching(GatewayExecutionContext):
        def build_resolve_info(self, field_def: Any, field_nodes: Any, parent_type: Any, path: Any) -> Any:
            resolved.append(f"{parent_type.name}.{field_nodes[0].name.value}")
            return super().build_resolve_info(field_def, field_nodes, parent_type, path)

    schema = strawberry.Schema(query=Query, execution_context_class=Watching)
    result = await schema.execute("{ decisions { subjectId allowed reason } }")
    assert result.errors is None
    assert resolved == ["Query.decisions"]  # not once per decision and field

    resolved.clear()
    await schema.execute("{ decisions { subjectId shout } }")
    assert "Decision.shout" in resolved  # a field with a resolver still resolves


@strawberry.type
class Row:
    name: str
    allowed: bool


@strawberry.type
class DictQuery:
    @strawberry.field
    def rows(self) -> list[Row]:
        return [{"name": "a", "allowed": True}, {"name": "b", "allowed": False}]  # type: ignore[list-item]


async def test_a_schema_with_its_own_default_resolver_is_read_through_it() -> None:
    config = StrawberryConfig(default_resolver=lambda source, name: source[name])
    fast = strawberry.Schema(DictQuery, config=config, execution_context_class=GatewayExecutionContext)
    ordinary = strawberry.Schema(DictQuery, config=config)
    query = "{ rows { name allowed } }"
    got, expected = await fast.execute(query), await ordinary.execute(query)
    assert got.errors is None
    assert (
        got.data
        == expected.data
        == {"rows": [{"name": "a", "allowed": True}, {"name": "b", "allowed": False}]}
    )


async def test_a_plan_is_shared_by_requests_of_one_document_unless_the_request_can_change_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inspect import isawaitable

    from graphql import execute, parse

    from dsr_gateway.graphql import execution

    made: list[str] = []
    plan_for = execution._plan_for
    monkeypatch.setattr(
        execution,
        "_plan_for",
        lambda t, c: made.append(t.name) or plan_for(t, c),  # type: ignore[func-returns-value]
    )
    schema = strawberry.Schema(query=Query, execution_context_class=GatewayExecutionContext)
    plain = parse("{ decisions { subjectId reason } }")
    switched = parse("query($s: Boolean!) { decisions { subjectId @include(if: $s) reason } }")
    spread = parse(
        "query($s: Boolean!) { decisions { ...D } } "
        "fragment D on Decision { subjectId @skip(if: $s) allowed }"
    )

    async def run(document: Any, variables: dict[str, Any] | None = None) -> Any:
        result = execute(
            schema._schema,
            document,
            root_value=Query(),
            variable_values=variables,
            executor_class=GatewayExecutionContext,
        )
        assert not isawaitable(result)  # the resolvers are plain functions
        assert result.errors is None
        return result.data

    first = await run(plain)
    assert await run(plain) == first
    assert made == ["Decision"]  # the second request used the first one's plan

    made.clear()
    assert await run(switched, {"s": True}) == {
        "decisions": [{"subjectId": "a", "reason": "GRANTED"}, {"subjectId": "b", "reason": "NOT_GIVEN"}]
    }
    assert await run(switched, {"s": False}) == {
        "decisions": [{"reason": "GRANTED"}, {"reason": "NOT_GIVEN"}]
    }
    assert await run(spread, {"s": True}) == {"decisions": [{"allowed": True}, {"allowed": False}]}
    assert await run(spread, {"s": False}) == {
        "decisions": [{"subjectId": "a", "allowed": True}, {"subjectId": "b", "allowed": False}]
    }
    assert made == ["Decision"] * 4  # a directive: planned per request
