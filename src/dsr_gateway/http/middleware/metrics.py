"""Count HTTP requests and time them, by route template (never the raw path: tokens live in paths)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The methods kept as a label; any other is counted as "OTHER" (a client may send any token as a method,
# and each new label value would be a new series kept for the process's life).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ROUTE_PREFIXES = (
    "/graphql",
    "/healthz",
    "/readyz",
    "/metrics",
    "/unsubscribe",
    "/reconfirm",
    "/exports",
    "/callbacks",
    "/.well-known",
)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "dsr_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "dsr_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        # The labelled children kept here: prometheus_client's `labels()` checks and locks on every call
        # (routes are a fixed list, methods a fixed set, statuses a few dozen).
        route = route_of(path)
        if method not in METHODS:
            method = "OTHER"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)


def route_of(path: str) -> str:
    return next((p for p in ROUTE_PREFIXES if path == p or path.startswith(p + "/")), "other")


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.observe(scope["path"], scope["method"], status, time.perf_counter() - started)
