"""POST /callbacks/fulfilment/{request_id}/{step}: an HTTP system in `callback` mode posts its answer.

The body is the answer the endpoint would have given synchronously, plus the `request_id` and `step` of
the call it answers, signed the same way with the shared secret (X-DSR-Timestamp,
X-DSR-Signature). Idempotent: a repeated callback answers 200 and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dsr_gateway.connectors.http_connector import HttpConnector
from dsr_gateway.connectors.http_signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, InvalidSignature
from dsr_gateway.domain.errors import NotFound
from dsr_gateway.domain.fulfilment import FulfilmentStep, Phase, parse_step_key
from dsr_gateway.services.fulfilment.phases import (
    CONSENT_CHANGES,
    StepContext,
    StepOutcome,
    erasure_json,
    notify_json,
    rectify_json,
)
from dsr_gateway.services.fulfilment.runner import FulfilmentRunner
from dsr_gateway.services.fulfilment_ports import ConsentChange, PermanentConnectorError

UNKNOWN = {"error": "not_found", "message": "No such request step is waiting for a callback."}


async def fulfilment_callback(request: Request) -> Response:
    runner: FulfilmentRunner = request.state.services.fulfilment
    request_id, step_key = request.path_params["request_id"], request.path_params["step"]
    parsed = parse_step_key(step_key)
    connector = request.state.connectors.get(parsed[1]) if parsed else None
    if parsed is None or not isinstance(connector, HttpConnector):
        return JSONResponse(UNKNOWN, status_code=404)
    body = await request.body()
    try:
        connector.verify_callback(
            body, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)
        )
    except InvalidSignature as exc:
        return JSONResponse({"error": "unauthorized", "message": exc.reason}, status_code=401)
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return JSONResponse(
            {"error": "bad_request", "message": "The body must be a JSON object."}, status_code=400
        )
    # The signature covers the body only, so the body must name the step it answers: otherwise a
    # captured answer could be replayed to another request's waiting step.
    if answer.get("request_id") != request_id or answer.get("step") != step_key:
        return JSONResponse(
            {
                "error": "forbidden",
                "message": "The signed body must carry the request_id and step of the call it answers.",
            },
            status_code=403,
        )
    try:
        changed = await runner.complete_callback(request_id, step_key, _decoder(connector, parsed[0], answer))
    except NotFound:
        return JSONResponse(UNKNOWN, status_code=404)
    except PermanentConnectorError as exc:
        return JSONResponse({"error": "unprocessable", "message": exc.message}, status_code=422)
    return JSONResponse({"status": "recorded" if changed else "already recorded"})


def _decoder(connector: HttpConnector, phase: Phase, answer: dict[str, Any]) -> Any:
    def decode(step: FulfilmentStep, ctx: StepContext) -> StepOutcome:
        if phase is Phase.ERASE:
            return StepOutcome(erasure_json(connector.parse_erasure(answer)))
        if phase is Phase.RECTIFY:
            changes = {str(c["field"]): c["requestedValue"] for c in ctx.request.details.get("changes", ())}
            return StepOutcome(rectify_json(connector.parse_rectification(answer, changes)))
        if phase is Phase.NOTIFY:
            change = CONSENT_CHANGES.get(ctx.request.type, ConsentChange.WITHDRAWN)
            purposes = [str(p) for p in step.result.get("purposes", ())]
            told = connector.parse_consent(answer, purposes, change)
            return StepOutcome(notify_json(told, [str(r) for r in step.result.get("recipients", ())]))
        raise PermanentConnectorError(connector.name, f"a {phase.value} step takes no callback")

    return decode
