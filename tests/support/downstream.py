"""A small downstream system (a CRM) speaking the gateway's HTTP connector contract, as a Starlette app.

It verifies every signature as a real downstream would and keeps its records in memory.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dsr_gateway.connectors.http_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    verify_signature,
)
from dsr_gateway.connectors.systems_config import HttpSystem

SECRET = b"downstream-shared-secret"


def crm_config(base_url: str, **overrides: Any) -> HttpSystem:
    values: dict[str, Any] = {
        "kind": "http",
        "base_url": base_url,
        "secret_env": "CRM_SECRET",
        "timeout_seconds": 2,
        "endpoints": {
            "access": "/access",
            "erasure": "/erasure",
            "rectification": "/rectify",
            "consent": "/consent",
        },
        "sensitive_fields": ["phone"],
    }
    values.update(overrides)
    return HttpSystem.model_validate(values)


class Crm:
    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.tickets = [
            {"id": i, "customer": "cust-1" if i % 2 else "cust-2", "text": f"ticket {i}"} for i in range(1, 8)
        ]
        self.contacts = {
            "cust-1": {"phone": "+1 555", "name": "Jane"},
            "cust-2": {"phone": "+1 556", "name": "John"},
        }
        self.calls: list[dict[str, Any]] = []

    async def _verified(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        verify_signature(
            SECRET,
            body,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            time.time(),
        )
        payload: dict[str, Any] = json.loads(body)
        self.calls.append(
            {"path": request.url.path, **payload, "idempotency": request.headers.get("Idempotency-Key")}
        )
        return payload

    async def access(self, request: Request) -> Response:
        try:
            payload = await self._verified(request)
        except InvalidSignature as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        who = payload["subject"]["external_id"]
        mine = [t for t in self.tickets if t["customer"] == who]
        start = int(payload["cursor"] or 0)
        page = mine[start : start + self.page_size]
        following = start + self.page_size
        tables: dict[str, Any] = {"tickets": page}
        if start == 0 and who in self.contacts:
            tables["contact"] = [self.contacts[who]]
        return JSONResponse({"tables": tables, "next": str(following) if following < len(mine) else None})

    async def erasure(self, request: Request) -> Response:
        try:
            payload = await self._verified(request)
        except InvalidSignature as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        who = payload["subject"]["external_id"]
        before = len(self.tickets)
        self.tickets = [t for t in self.tickets if t["customer"] != who]
        self.contacts.pop(who, None)
        return JSONResponse(
            {
                "results": [
                    {
                        "table": "tickets",
                        "field": None,
                        "action": "deleted",
                        "rows": before - len(self.tickets),
                    },
                    {"table": "contact", "field": "phone", "action": "erased", "rows": 1},
                ]
            }
        )

    async def rectify(self, request: Request) -> Response:
        try:
            payload = await self._verified(request)
        except InvalidSignature as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        who = payload["subject"]["external_id"]
        results = []
        for field, value in payload["changes"].items():
            record = self.contacts.get(who, {})
            if field in record:
                old = record[field]
                record[field] = value
                results.append(
                    {"table": "contact", "field": field, "outcome": "applied", "rows": 1, "old_values": [old]}
                )
            else:
                results.append({"table": None, "field": field, "outcome": "not_held"})
        return JSONResponse({"results": results})

    async def consent(self, request: Request) -> Response:
        try:
            await self._verified(request)
        except InvalidSignature as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/dsr/access", self.access, methods=["POST"]),
                Route("/dsr/erasure", self.erasure, methods=["POST"]),
                Route("/dsr/rectify", self.rectify, methods=["POST"]),
                Route("/dsr/consent", self.consent, methods=["POST"]),
            ]
        )
