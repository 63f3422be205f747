"""The typed per-request context every resolver receives as `Info`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from dsr_gateway.domain.principal import Principal

if TYPE_CHECKING:
    from dsr_gateway.services.container import Services


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal
    services: Services
    request_id: str
    # Per-request DataLoaders, made lazily by the resolvers that need them.
    loaders: dict[str, Any] = field(default_factory=dict)


Info: TypeAlias = strawberry.Info[Context, None]
