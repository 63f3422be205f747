"""HookRunner enters and leaves extension hooks exactly as Strawberry's own runner does.

Each case runs the same extensions through both runners and compares what the hooks saw, in order:
generator, async generator, coroutine and plain hooks; one hook and several; an exception from the body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner

from dsr_gateway.graphql.extension_hooks import NO_HOOKS, HookRunner


class Log:
    entries: list[str] = []


class Generator(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        Log.entries.append("gen enter")
        try:
            yield
        except ValueError as exc:
            Log.entries.append(f"gen saw {exc}")
            raise
        Log.entries.append("gen exit")

    def on_parse(self) -> Iterator[None]:
        Log.entries.append("gen parse")
        yield


class AsyncGenerator(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        Log.entries.append("agen enter")
        try:
            yield
        except ValueError as exc:
            Log.entries.append(f"agen saw {exc}")
            raise
        Log.entries.append("agen exit")

    async def on_validate(self) -> AsyncIterator[None]:
        Log.entries.append("agen validate")
        yield


class Coroutine(SchemaExtension):
    async def on_operation(self) -> None:  # type: ignore[override]
        Log.entries.append("coroutine")


class Plain(SchemaExtension):
    def on_operation(self) -> None:  # type: ignore[override]
        Log.entries.append("plain")

    def on_execute(self) -> None:  # type: ignore[override]
        Log.entries.append("plain execute")


class Swallows(SchemaExtension):
    """Catches the body's exception: Strawberry's runner re-raises it all the same."""

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except ValueError:
            Log.entries.append("swallowed")


CASES = [
    pytest.param([Generator], id="one generator"),
    pytest.param([AsyncGenerator], id="one async generator"),
    pytest.param([Coroutine], id="one coroutine"),
    pytest.param([Plain], id="one plain"),
    pytest.param([Generator, AsyncGenerator, Coroutine, Plain], id="several"),
    pytest.param([AsyncGenerator, Generator], id="several, async first"),
    pytest.param([Swallows], id="one that swallows"),
    pytest.param([Generator, Swallows], id="several, one swallows"),
]


async def _run(runner: SchemaExtensionsRunner, fail: bool) -> tuple[list[str], str | None]:
    Log.entries = []
    raised = None
    try:
        async with runner.operation():
            async with runner.parsing():
                pass
            async with runner.validation():
                pass
            async with runner.executing():
                Log.entries.append("body")
                if fail:
                    raise ValueError("boom")
    except ValueError as exc:
        raised = str(exc)
    return list(Log.entries), raised


def _runners(classes: list[type[SchemaExtension]]) -> tuple[SchemaExtensionsRunner, HookRunner]:
    context: Any = None
    return (
        SchemaExtensionsRunner(context, [cls() for cls in classes]),
        HookRunner(context, [cls() for cls in classes]),
    )


@pytest.mark.parametrize("fail", [False, True], ids=["body succeeds", "body raises"])
@pytest.mark.parametrize("classes", CASES)
async def test_the_hooks_see_what_strawberry_runner_shows_them(
    classes: list[type[SchemaExtension]], fail: bool
) -> None:
    strawberry_runner, ours = _runners(classes)
    expected = await _run(strawberry_runner, fail)
    assert await _run(ours, fail) == expected
    assert "body" in expected[0]
    assert expected[1] == ("boom" if fail else None)


@pytest.mark.parametrize("classes", CASES)
def test_synchronous_execution_matches_strawberry(classes: list[type[SchemaExtension]]) -> None:
    def run(runner: SchemaExtensionsRunner) -> tuple[list[str], str | None]:
        Log.entries = []
        try:
            with runner.operation():
                Log.entries.append("body")
        except RuntimeError as exc:
            return list(Log.entries), type(exc).__name__
        return list(Log.entries), None

    strawberry_runner, ours = _runners(classes)
    assert run(ours) == run(strawberry_runner)


def test_a_hook_no_extension_has_costs_nothing() -> None:
    _, ours = _runners([Coroutine])
    assert ours.parsing() is NO_HOOKS
    assert ours.executing() is NO_HOOKS


def test_a_schema_executes_through_the_runner() -> None:
    @strawberry.type
    class Query:
        hello: str = "world"

    class Counting(SchemaExtension):
        calls = 0

        def on_execute(self) -> Iterator[None]:
            Counting.calls += 1
            yield

    class Schema(strawberry.Schema):
        def create_extensions_runner(self, execution_context: Any, extensions: Any) -> Any:
            return HookRunner(execution_context=execution_context, extensions=extensions)

    result = Schema(query=Query, extensions=[Counting]).execute_sync("{ hello }", root_value=Query())
    assert result.data == {"hello": "world"}
    assert Counting.calls == 1
