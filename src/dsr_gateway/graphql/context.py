"""The typed per-request context every resolver receives as `Info`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from dsr_gateway.domain.principal import Principal

if TYPE_CHECKING:
    from dsr_gateway.services.container import Services

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal
    services: Services
    request_id: str
    # Per-request DataLoaders, made lazily by the resolvers that need them.
    loaders: dict[str, Any] = field(default_factory=dict)
    # A WebSocket client's `connection_init` payload (browsers cannot send headers on a WebSocket).
    connection_params: dict[str, Any] | None = None

    def loader(self, name: str, load: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
        """This request's DataLoader called `name`, made with `load` by the first resolver that asks."""
        found = self.loaders.get(name)
        if found is None:
            found = self.loaders[name] = DataLoader(load_fn=load)
        return cast(DataLoader[K, V], found)

    def forget_loaded(self) -> None:
        """Drop the DataLoaders (and their caches), keep the rest (the access notes).

        A WebSocket connection keeps one context for all its events: a subscription calls this before
        each event, or every later event would be answered from the first one's cache.
        """
        for key in [k for k, v in self.loaders.items() if isinstance(v, DataLoader)]:
            del self.loaders[key]


Info: TypeAlias = strawberry.Info[Context, None]
