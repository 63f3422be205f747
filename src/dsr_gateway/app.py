"""The composition root: settings in, a Starlette app out; every resource is built in the lifespan."""

from __future__ import annotations

import asyncio
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

from dsr_gateway.connectors.crypto import AesGcmCipher
from dsr_gateway.connectors.events import InProcessEventBus
from dsr_gateway.connectors.holiday_calendar import build_working_calendar
from dsr_gateway.connectors.pg_events import PostgresEventBus, asyncpg_dsn
from dsr_gateway.connectors.smtp_mailer import SmtpConfig, SmtpMailer
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.sla_rules import Jurisdiction
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
from dsr_gateway.services.container import Services
from dsr_gateway.services.outbox import OutboxService
from dsr_gateway.services.ports import EventBus, UnitOfWorkFactory
from dsr_gateway.services.requests import (
    RequestActionService,
    RequestIntakeService,
    RequestQueryService,
    SlaClock,
    SlaSweepService,
)
from dsr_gateway.settings import Settings
from dsr_gateway.worker.loops import WorkerConfig, run_worker


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_sla_clock(settings: Settings) -> SlaClock:
    """One working calendar per regime from DSR_SLA_<REGIME>_TZ / _HOLIDAYS (validated by Settings)."""
    calendars = {
        Jurisdiction(regime): build_working_calendar(tz, code)
        for regime, (tz, code) in settings.sla_calendar_settings().items()
    }
    return SlaClock(calendars, gdpr_pauses=settings.sla_gdpr_pauses)


def build_cipher(settings: Settings) -> AesGcmCipher:
    if settings.encryption_key is None or settings.hmac_key is None:
        raise ValueError("DSR_ENCRYPTION_KEY and DSR_HMAC_KEY are needed to store contact details")
    return AesGcmCipher(settings.encryption_key.get_secret_value(), settings.hmac_key.get_secret_value())


def build_mailer(settings: Settings) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            sender=settings.smtp_from,
            timeout=settings.smtp_timeout_seconds,
        )
    )


def build_event_bus(settings: Settings) -> InProcessEventBus | PostgresEventBus:
    """LISTEN/NOTIFY on PostgreSQL so that every process sees every event; in-process on SQLite."""
    if settings.is_sqlite:
        return InProcessEventBus()
    return PostgresEventBus(asyncpg_dsn(settings.database_url))


def build_request_services(settings: Settings, uow: UnitOfWorkFactory, events: EventBus) -> dict[str, Any]:
    """The request use cases, shared by the app, `dsr-gateway worker` and `dsr-gateway sweep`."""
    sla, cipher = build_sla_clock(settings), build_cipher(settings)
    return {
        "request_intake": RequestIntakeService(uow, utc_now, events, cipher, sla),
        "request_actions": RequestActionService(uow, utc_now, events, cipher, sla),
        "request_queries": RequestQueryService(uow, utc_now, cipher, sla),
        "sla_sweep": SlaSweepService(uow, utc_now, events, sla),
        "outbox": OutboxService(uow, utc_now, cipher, log_bodies=settings.is_development),
    }


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(settings.outbox_poll_seconds, settings.sla_sweep_seconds)


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
        http_client = httpx.AsyncClient(timeout=10.0)

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(session_factory)

        events = build_event_bus(settings)
        if isinstance(events, PostgresEventBus):
            await events.start()
        services = Services(
            catalogue=CatalogueService(uow, utc_now, events),
            api_keys=ApiKeyService(uow, utc_now),
            events=events,
            **build_request_services(settings, uow, events),
        )
        # On the embedded default one command is enough: `serve` runs the worker's loops itself.
        stop_worker = asyncio.Event()
        worker_task = (
            asyncio.create_task(
                run_worker(
                    services.outbox,
                    services.sla_sweep,
                    build_mailer(settings),
                    worker_config(settings),
                    stop_worker,
                )
            )
            if settings.runs_worker_in_process
            else None
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
            stop_worker.set()
            if worker_task is not None:
                await worker_task
            if isinstance(events, PostgresEventBus):
                await events.close()
            await http_client.aclose()
            await engine.dispose()

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
