"""Schema extension hooks, worked out once per extension class instead of on every request.

Strawberry's runner inspects every extension for every hook on every request: it checks what kind of
function the hook is, binds it, and wraps it in a new `contextmanager` (copying the function's metadata),
then enters it through an exit stack. For a `{ __typename }` that was about a sixth of the server's time.
`HookRunner` does the inspecting and wrapping once per (extension class, hook) and enters a lone hook
directly; with several hooks it uses the same exit stack as Strawberry, so the order, the exceptions seen by
each hook and the suppression rules are the same. Streaming results (`on_stream_result`) stay Strawberry's.
A hook is looked up once per class: replacing a hook method on an extension class after its first request
is not seen.
"""

from __future__ import annotations

import contextlib
import inspect
from asyncio import iscoroutinefunction
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner

# Per hook: makes the hook's context manager for one extension, and whether it must be entered with await.
Factory = tuple[Callable[[SchemaExtension], Any], bool]
_factories: dict[tuple[type[SchemaExtension], str], Factory | None] = {}


def _factory(extension_class: type[SchemaExtension], name: str) -> Factory | None:
    """How to enter this class's hook (None: the class does not override it); as Strawberry's `get_hook`."""
    key = (extension_class, name)
    if key in _factories:
        return _factories[key]
    hook = getattr(extension_class, name)
    factory: Factory | None
    if hook is getattr(SchemaExtension, name):
        factory = None
    elif inspect.isgeneratorfunction(hook):
        factory = (contextlib.contextmanager(hook), False)
    elif inspect.isasyncgenfunction(hook):
        factory = (contextlib.asynccontextmanager(hook), True)
    elif iscoroutinefunction(hook):
        factory = (_awaited(hook), True)
    elif callable(hook):
        factory = (_called(hook), False)
    else:
        raise ValueError(f"Hook {name} on {extension_class} must be callable, received {hook!r}")
    _factories[key] = factory
    return factory


def _awaited(hook: Callable[[SchemaExtension], Any]) -> Callable[[SchemaExtension], Any]:
    @contextlib.asynccontextmanager
    async def entered(extension: SchemaExtension) -> AsyncIterator[None]:
        await hook(extension)
        yield

    return entered


def _called(hook: Callable[[SchemaExtension], Any]) -> Callable[[SchemaExtension], Any]:
    @contextlib.contextmanager
    def entered(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return entered


class _NoHooks:
    """No extension has this hook: entering and leaving cost nothing."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


NO_HOOKS = _NoHooks()


class _Hooks:
    __slots__ = ("_hooks", "_name", "_one", "_stack")

    def __init__(self, name: str, hooks: list[tuple[SchemaExtension, Factory]]) -> None:
        self._name = name
        self._hooks = hooks
        self._one: Any = None
        self._stack: Any = None

    async def __aenter__(self) -> None:
        if len(self._hooks) == 1:
            extension, (make, is_async) = self._hooks[0]
            self._one = one = make(extension)
            if is_async:
                await one.__aenter__()
            else:
                one.__enter__()
            return
        self._stack = stack = contextlib.AsyncExitStack()
        for extension, (make, is_async) in self._hooks:
            if is_async:
                await stack.enter_async_context(make(extension))
            else:
                stack.enter_context(make(extension))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Never suppresses the exception (a hook only sees it), as Strawberry's runner.
        if self._stack is not None:
            await self._stack.__aexit__(exc_type, exc, tb)
        elif self._hooks[0][1][1]:
            await self._one.__aexit__(exc_type, exc, tb)
        else:
            self._one.__exit__(exc_type, exc, tb)

    def __enter__(self) -> None:
        # Synchronous execution (`execute_sync`): an async hook cannot run; Strawberry says so when it
        # reaches it, after entering the hooks before it.
        self._stack = stack = contextlib.ExitStack()
        for extension, (make, is_async) in self._hooks:
            if is_async:
                raise RuntimeError(
                    f"SchemaExtension hook {extension}.{self._name} failed to complete synchronously."
                )
            stack.enter_context(make(extension))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)


class HookRunner(SchemaExtensionsRunner):
    """Strawberry's extensions runner with each hook's wrapping worked out once per extension class."""

    def _hooks(self, name: str) -> Any:
        hooks = [
            (extension, factory)
            for extension in self.extensions
            if (factory := _factory(type(extension), name)) is not None
        ]
        return _Hooks(name, hooks) if hooks else NO_HOOKS

    def operation(self) -> Any:
        return self._hooks("on_operation")

    def validation(self) -> Any:
        return self._hooks("on_validate")

    def parsing(self) -> Any:
        return self._hooks("on_parse")

    def executing(self) -> Any:
        return self._hooks("on_execute")
