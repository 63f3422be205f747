"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

logger = logging.getLogger("dsr_gateway.health")
DatabasePing = Callable[[], Awaitable[None]]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ping: DatabasePing = request.state.database_ping
    try:
        await ping()
    except Exception:
        logger.warning("readiness check: the database does not answer", exc_info=True)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.state.metrics_registry
    refresh = getattr(request.state, "metrics_refresh", None)
    if refresh is not None:  # gauges read from the database at scrape time
        try:
            await refresh()
        except Exception:
            logger.warning("metrics: the database gauges could not be read", exc_info=True)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
