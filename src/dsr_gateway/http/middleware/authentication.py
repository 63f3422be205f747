"""Resolve the bearer credential into a Principal once per request; a bad one is a 401 here."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dsr_gateway.http.auth import AuthenticationFailed, Authenticator

# Routes that carry their own proof (a signed link or body) or none: a caller's Authorization header,
# perhaps another system's, must not turn them into a 401.
UNAUTHENTICATED_PATHS = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/unsubscribe/",
    "/reconfirm/",
    "/exports/",
    "/callbacks/",
    "/.well-known/",
)


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(UNAUTHENTICATED_PATHS):
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["state"]["authenticator"]
        header = dict(scope["headers"]).get(b"authorization")
        try:
            principal = await authenticator.authenticate(header.decode("latin-1") if header else None)
        except AuthenticationFailed as exc:
            denial_response = "websocket.http.response" in scope.get("extensions", {})
            if scope["type"] == "websocket" and not denial_response:
                # A server that cannot answer a handshake with a response refuses it (HTTP 403).
                await send({"type": "websocket.close", "code": 4401, "reason": str(exc)[:120]})
                return
            # Over HTTP, and on a WebSocket handshake where the server can: 401 with the reason.
            response = JSONResponse(
                {"errors": [{"message": str(exc), "extensions": {"code": "UNAUTHENTICATED"}}]},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            await response(scope, receive, send)
            return
        scope["state"]["principal"] = principal
        await self.app(scope, receive, send)
