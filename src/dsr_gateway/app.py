"""The composition root: settings in, a Starlette app out; every resource is built in the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from dsr_gateway.connectors.events import InProcessEventBus
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.read_engine import make_read_engine
from dsr_gateway.db.repositories.consent_reads import SqlConsentReader
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.graphql.schema import build_schema
from dsr_gateway.http import health
from dsr_gateway.http.auth import Authenticator, JwksKeys, JwtConfig
from dsr_gateway.http.graphql_app import make_graphql_app
from dsr_gateway.http.middleware.authentication import AuthenticationMiddleware
from dsr_gateway.http.middleware.body_limit import BodySizeLimitMiddleware
from dsr_gateway.http.middleware.metrics import HttpMetrics, MetricsMiddleware
from dsr_gateway.http.middleware.request_id import RequestIdMiddleware
from dsr_gateway.services.api_keys import ApiKeyService
from dsr_gateway.services.catalogue import CatalogueService
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.container import Services
from dsr_gateway.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> Starlette:
    settings = settings.with_development_secrets()
    registry = CollectorRegistry()
    schema = build_schema(
        production=not settings.is_development,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
    )
    graphql_app = make_graphql_app(schema, development=settings.is_development)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
        session_factory = make_session_factory(engine)
        read_engine = make_read_engine(settings.database_url, pool_size=settings.database_pool_size)
        http_client = httpx.AsyncClient(timeout=10.0)

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(session_factory)

        events = InProcessEventBus()
        services = Services(
            catalogue=CatalogueService(uow, utc_now, events),
            api_keys=ApiKeyService(uow, utc_now),
            events=events,
            consent=ConsentService(uow, utc_now, SqlConsentReader(read_engine)),
        )
        jwt_config = JwtConfig(
            secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            jwks_url=settings.jwks_url,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            jwks_cache_seconds=settings.jwks_cache_seconds,
        )
        jwks = (
            JwksKeys(settings.jwks_url, http_client, settings.jwks_cache_seconds)
            if settings.jwks_url
            else None
        )

        async def database_ping() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        try:
            yield {
                "services": services,
                "authenticator": Authenticator(jwt_config, services.api_keys.authenticate, jwks),
                "database_ping": database_ping,
                "metrics_registry": registry,
            }
        finally:
            await http_client.aclose()
            await engine.dispose()
            await read_engine.dispose()

    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(MetricsMiddleware, metrics=HttpMetrics(registry)),
        Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(AuthenticationMiddleware),
    ]
    routes = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def app_from_environment() -> Starlette:
    """The uvicorn factory for `dsr-gateway serve`: settings from the environment."""
    return create_app(Settings())
