"""/.well-known/jwks.json: the public key that verifies audit checkpoints and consent receipts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def jwks(request: Request) -> Response:
    keys: dict[str, object] = request.state.signing_jwks
    return JSONResponse(
        keys,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
