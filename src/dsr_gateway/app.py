"""The composition root: settings in, a Starlette app out; every resource is built in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from dsr_gateway.connectors.certificate_signer import CertificateSigner
from dsr_gateway.connectors.crypto import AesGcmCipher
from dsr_gateway.connectors.events import InProcessEventBus
from dsr_gateway.connectors.export_package import ZipPackageWriter
from dsr_gateway.connectors.export_storage import LocalDirectoryStorage
from dsr_gateway.connectors.gateway_records import gateway_connectors
from dsr_gateway.connectors.holiday_calendar import build_working_calendar
from dsr_gateway.connectors.link_signing import LinkSigner, UnsubscribeLinks
from dsr_gateway.connectors.pg_connect import asyncpg_options
from dsr_gateway.connectors.pg_events import PostgresEventBus
from dsr_gateway.connectors.public_addresses import non_public_destination
from dsr_gateway.connectors.registry import build_connectors, close_connectors
from dsr_gateway.connectors.secret_box import SecretBox
from dsr_gateway.connectors.signing import Ed25519Signer, load_signing_key
from dsr_gateway.connectors.smtp_mailer import SmtpConfig, SmtpMailer
from dsr_gateway.connectors.systems_config import SystemsConfig, load_systems
from dsr_gateway.connectors.templates import MessageTemplates
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.hot_reads import HotReadPool
from dsr_gateway.db.read_engine import make_read_engine
from dsr_gateway.db.repositories.audit import SqlChainSource, SqlCheckpointStore
from dsr_gateway.db.repositories.audit_trail import SqlAuditTrail
from dsr_gateway.db.repositories.chain_sealing import (
    CONSENT_EVENTS,
    CONSENT_LAYOUT,
    REQUEST_EVENTS,
    REQUEST_LAYOUT,
)
from dsr_gateway.db.repositories.consent_reads import SqlConsentReader
from dsr_gateway.db.repositories.operational import SqlOperationalQueries
from dsr_gateway.db.repositories.reports import SqlReportQueries
from dsr_gateway.db.uow import DriverUnitOfWork, SqlUnitOfWork
from dsr_gateway.domain.fulfilment import RetryPolicy, SystemInfo
from dsr_gateway.domain.receipts import Controller
from dsr_gateway.domain.sla_rules import Jurisdiction
from dsr_gateway.gc_tuning import tune_garbage_collector
from dsr_gateway.graphql.observability import GraphQLMetrics
from dsr_gateway.graphql.schema import build_schema
from dsr_gateway.http import callbacks, exports, health, reconfirm, unsubscribe, wellknown
from dsr_gateway.http.auth import Authenticator, JwksKeys, JwtConfig
from dsr_gateway.http.graphql_app import make_graphql_app
from dsr_gateway.http.middleware.authentication import AuthenticationMiddleware
from dsr_gateway.http.middleware.body_limit import BodySizeLimitMiddleware
from dsr_gateway.http.middleware.gpc import GpcMiddleware
from dsr_gateway.http.middleware.metrics import HttpMetrics, MetricsMiddleware
from dsr_gateway.http.middleware.request_id import RequestIdMiddleware
from dsr_gateway.http.operational_metrics import ConsentWriteMetrics, OperationalGauges
from dsr_gateway.services.api_keys import ApiKeyService
from dsr_gateway.services.audit import AuditService, ChainRegistry
from dsr_gateway.services.audit_trail import AccessBatcher, AuditTrailService
from dsr_gateway.services.catalogue import CatalogueService
from dsr_gateway.services.comms.breach import BreachService
from dsr_gateway.services.comms.compose import CommsConfig, Composer
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.comms.contacts import ContactService
from dsr_gateway.services.comms.links import LinkService
from dsr_gateway.services.comms.notices import NoticeAnnouncer
from dsr_gateway.services.comms.reviews import ReviewService
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_followups import ConsentFollowUps
from dsr_gateway.services.consent_lifecycle import ConsentLifecycleService
from dsr_gateway.services.consent_receipts import ConsentReceipts
from dsr_gateway.services.container import Services
from dsr_gateway.services.exports import ExportService
from dsr_gateway.services.fulfilment.phases import PhaseRunner
from dsr_gateway.services.fulfilment.planner import FulfilmentPlanner, LegalHoldService
from dsr_gateway.services.fulfilment.queries import FulfilmentQueryService
from dsr_gateway.services.fulfilment.runner import FulfilmentRunner, RunnerConfig
from dsr_gateway.services.fulfilment_ports import Connector
from dsr_gateway.services.group_commit import turns_for_pool
from dsr_gateway.services.outbox import OutboxService
from dsr_gateway.services.ports import EventBus, UnitOfWorkFactory
from dsr_gateway.services.receipts import ReceiptService
from dsr_gateway.services.reports import ReportService
from dsr_gateway.services.requests import (
    RequestActionService,
    RequestIntakeService,
    RequestQueryService,
    SlaClock,
    SlaSweepService,
)
from dsr_gateway.services.webhooks import WebhookService
from dsr_gateway.settings import Settings
from dsr_gateway.worker.loops import WorkerConfig, run_worker
from dsr_gateway.worker.metrics import WorkerMetrics
from dsr_gateway.worker.webhook_sender import WebhookSender


def utc_now() -> datetime:
    return datetime.now(UTC)


def signer_from(settings: Settings) -> Ed25519Signer:
    """The key that signs checkpoints and receipts (DSR_SIGNING_KEY; generated in development)."""
    settings = settings.with_development_secrets()
    assert settings.signing_key is not None
    return Ed25519Signer.from_setting(settings.signing_key.get_secret_value())


def chain_registry(engine: AsyncEngine) -> ChainRegistry:
    """Every chained event table; `dsr-gateway audit` and `auditVerification` check these.

    One line per source, e.g.
    chains.register(SqlChainSource(engine, ConsentEventRow.__table__, "consent", "subject_id"))
    """
    chains = ChainRegistry()
    chains.register(SqlChainSource(engine, CONSENT_EVENTS, "consent", "subject_id", CONSENT_LAYOUT))
    chains.register(SqlChainSource(engine, REQUEST_EVENTS, "request", "request_id", REQUEST_LAYOUT))
    return chains


def audit_service(engine: AsyncEngine, settings: Settings) -> AuditService:
    return AuditService(chain_registry(engine), SqlCheckpointStore(engine), signer_from(settings), utc_now)


def controller_from(settings: Settings) -> Controller:
    address = {
        name: value
        for name, value in (
            ("streetAddress", settings.controller_address),
            ("addressCountry", settings.controller_country),
        )
        if value
    }
    return Controller(
        name=settings.controller_name,
        contact=settings.controller_contact,
        email=settings.controller_email,
        address=address,
        phone=settings.controller_phone,
        url=settings.controller_url,
    )


def build_consent_service(
    settings: Settings,
    uow: Callable[[], SqlUnitOfWork],
    read_engine: AsyncEngine,
    effects: ConsentEffects | None = None,
    hot_reads: HotReadPool | None = None,
    engine: AsyncEngine | None = None,
    on_write_batch: Callable[[int], None] | None = None,
) -> ConsentService:
    """The consent use cases; the webhook of every change goes in the change's transaction. On
    PostgreSQL (given the write engine) the writes run on the driver alone (db/uow.py DriverUnitOfWork)."""
    effects = effects or ConsentEffects(utc_now, None)
    writes: Callable[[], SqlUnitOfWork] = uow
    batches_at_once = 1  # SQLite serialises writers: a second batch would wait for the first
    if engine is not None and engine.dialect.name == "postgresql":
        writes = lambda: DriverUnitOfWork(engine)  # noqa: E731
        # A batch skips the subjects another holds (SKIP LOCKED), so two never wait for each other:
        # one's round trips and COMMIT overlap the next one's work in Python (~6% more writes/s).
        batches_at_once = 2
    reader = SqlConsentReader(read_engine, hot_reads)
    # Calls written together share one unit of work (arrays, one statement per step: consent_batch.py).
    return ConsentService(
        writes,
        utc_now,
        reader,
        effects=effects,
        batch_uow=writes,
        on_write_batch=on_write_batch,
        lock_timeout=settings.consent_lock_timeout_seconds,
        batches_at_once=batches_at_once,
        max_alone=turns_for_pool(settings.database_pool_size, batches_at_once),
    )


def build_consent_followups(
    settings: Settings,
    uow: Callable[[], SqlUnitOfWork],
    receipts: ReceiptService | None = None,
    composer: Composer | None = None,
) -> ConsentFollowUps:
    """The ledger's follower: a signed receipt and the messages of every consent change, after it commits."""
    if receipts is None:
        receipts = ReceiptService(uow, signer_from(settings), controller_from(settings), utc_now)
    return ConsentFollowUps(
        uow,
        utc_now,
        ConsentReceipts(receipts, settings.receipt_jurisdiction),
        ConsentEffects(utc_now, composer or build_composer(settings)),
    )


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
    return PostgresEventBus(asyncpg_options(settings.database_url))


def build_link_signer(settings: Settings) -> LinkSigner:
    """Signed links in messages: DSR_HMAC_KEY under DSR_LINK_KEY_ID, retired keys still accepted."""
    settings = settings.with_development_secrets()
    if settings.hmac_key is None:  # filled in development, required in production
        raise RuntimeError("DSR_HMAC_KEY is required")
    link_keys = {k: v.get_secret_value() for k, v in settings.previous_link_keys.items()}
    link_keys[settings.link_key_id] = settings.hmac_key.get_secret_value()
    return LinkSigner(link_keys, settings.link_key_id)


def build_templates(settings: Settings) -> MessageTemplates:
    return MessageTemplates(
        settings.templates_dir,
        defaults={"organisation": settings.organisation_name, "privacy_contact": settings.privacy_contact},
    )


def build_composer(settings: Settings) -> Composer:
    """Messages from templates, with signed links and the communication settings."""
    config = CommsConfig(
        preferences_url=settings.preferences_url,
        notice_url=settings.notice_url,
        reconfirm_link_days=settings.reconfirm_link_days,
        campaign_min_interval=timedelta(days=settings.campaign_min_interval_days),
        expiry_grace=timedelta(days=settings.consent_expiry_grace_days),
        supervisory_authority_name=settings.supervisory_authority_name,
        supervisory_authority_url=settings.supervisory_authority_url,
    )
    links = UnsubscribeLinks(build_link_signer(settings), settings.public_url)
    return Composer(build_templates(settings), build_cipher(settings), links, config)


def build_comms_services(
    settings: Settings, uow: UnitOfWorkFactory, consent: ConsentService, composer: Composer,
    systems: SystemsConfig,
) -> dict[str, Any]:  # fmt: skip
    """Reviews, the consent lifecycle (links, GPC, expiry), breach notices, contact details."""
    effects = ConsentEffects(utc_now, composer)
    return {
        "reviews": ReviewService(uow, utc_now, composer),
        "consent_lifecycle": ConsentLifecycleService(
            uow,
            utc_now,
            consent,
            effects,
            timedelta(days=settings.consent_expiry_grace_days),
            lock_timeout=settings.consent_lock_timeout_seconds,
        ),
        "breach": BreachService(uow, utc_now, composer, systems.describe()),
        "contacts": ContactService(uow, utc_now, build_cipher(settings)),
        "links": LinkService(uow, composer.links),
    }


def build_request_services(
    settings: Settings,
    uow: UnitOfWorkFactory,
    events: EventBus,
    fulfilment_hooks: FulfilmentPlanner | None = None,
) -> dict[str, Any]:
    """The request use cases, shared by the app, `dsr-gateway worker` and `dsr-gateway sweep`."""
    sla, cipher = build_sla_clock(settings), build_cipher(settings)
    composer = build_composer(settings)
    return {
        "request_intake": RequestIntakeService(uow, utc_now, events, cipher, sla, composer),
        "request_actions": RequestActionService(
            uow, utc_now, events, cipher, sla, composer, fulfilment_hooks
        ),
        "request_queries": RequestQueryService(uow, utc_now, cipher, sla),
        "sla_sweep": SlaSweepService(uow, utc_now, events, sla),
        "outbox": OutboxService(uow, utc_now, cipher, log_bodies=settings.is_development),
    }


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        outbox_poll_seconds=settings.outbox_poll_seconds,
        sla_sweep_seconds=settings.sla_sweep_seconds,
        fulfilment_poll_seconds=settings.fulfilment_poll_seconds,
        checkpoint_seconds=settings.checkpoint_seconds,
        consent_expiry_sweep_seconds=settings.consent_expiry_sweep_seconds,
        webhook_poll_seconds=settings.webhook_poll_seconds,
        consent_followup_poll_seconds=settings.consent_followup_poll_seconds,
    )


def build_webhook_sender(
    settings: Settings, uow: Callable[[], SqlUnitOfWork], http: httpx.AsyncClient, cipher: SecretBox
) -> WebhookSender:
    """The delivery loop; outside development it refuses non-public destinations at every attempt."""
    guard = None if settings.webhooks_may_reach_private_addresses else non_public_destination
    return WebhookSender(uow, http, cipher, utc_now, destination_guard=guard)


def webhook_step(sender: WebhookSender) -> Callable[[], Awaitable[object]]:
    """One worker step: send batches until none is due."""

    async def step() -> None:
        while await sender.run_once():
            pass

    return step


def systems_info(systems: SystemsConfig) -> list[SystemInfo]:
    return [
        SystemInfo(d.name, d.kind, d.purposes, d.data_categories, d.recipients) for d in systems.describe()
    ]


def build_export_service(settings: Settings, uow: Callable[[], SqlUnitOfWork]) -> ExportService:
    assert settings.hmac_key is not None  # required in production, generated in development
    storage = LocalDirectoryStorage(settings.export_dir)
    return ExportService(
        uow,
        ZipPackageWriter(storage, utc_now),
        storage,
        utc_now,
        settings.hmac_key.get_secret_value().encode(),
        settings.public_url,
        timedelta(days=settings.export_link_days),
    )


def build_connectors_for(
    settings: Settings, systems: SystemsConfig, http_client: httpx.AsyncClient, engine: AsyncEngine
) -> dict[str, Connector]:
    """A connector per SQL/HTTP system, and the gateway's own records for `kind = "gateway"`."""
    assert settings.hmac_key is not None
    connectors = build_connectors(
        systems,
        os.environ,
        http_client,
        settings.hmac_key.get_secret_value().encode(),
        f"{settings.public_url}/callbacks/fulfilment",
    )
    kinds = {name: system.kind for name, system in systems.systems.items()}
    connectors.update(gateway_connectors(kinds, engine))
    return connectors


def build_fulfilment(
    settings: Settings,
    systems: SystemsConfig,
    connectors: dict[str, Connector],
    uow: UnitOfWorkFactory,
    request_actions: RequestActionService,
    exports: ExportService,
    consent: ConsentService,
) -> dict[str, Any]:
    """The step runner (worker), its reads (GraphQL) and agents' legal holds."""
    assert settings.signing_key is not None  # generated in development, required in production
    signer = CertificateSigner(load_signing_key(settings.signing_key.get_secret_value()))
    phases = PhaseRunner(
        connectors, systems.describe(), exports, consent, signer, settings.public_url, utc_now
    )
    config = RunnerConfig(
        lease=timedelta(seconds=settings.fulfilment_lease_seconds),
        retry=RetryPolicy(
            max_attempts=settings.fulfilment_max_attempts,
            base_seconds=settings.fulfilment_retry_base_seconds,
            cap_seconds=settings.fulfilment_retry_cap_seconds,
        ),
        callback_wait=timedelta(seconds=settings.fulfilment_callback_wait_seconds),
    )
    runner = FulfilmentRunner(
        uow, utc_now, request_actions, phases, exports, build_cipher(settings), config, systems.holds()
    )
    return {
        "fulfilment": runner,
        "fulfilment_queries": FulfilmentQueryService(uow, exports, systems.describe()),
        "legal_holds": LegalHoldService(uow, utc_now, systems_info(systems)),
    }


def create_app(settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """`http_transport` replaces the network for outgoing calls (tests give an httpx.MockTransport)."""
    settings = settings.with_development_secrets()
    registry = CollectorRegistry()
    graphql_metrics = GraphQLMetrics(registry)
    worker_metrics = WorkerMetrics(registry)
    schema = build_schema(
        production=not settings.is_development,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
    )
    graphql_app = make_graphql_app(schema, development=settings.is_development)
    signer = signer_from(settings)
    # A bad systems file stops the start here, with every problem named by system and field.
    systems = load_systems(settings.systems_file) if settings.systems_file else SystemsConfig()
    # Erasure certificates are signed with the same key as checkpoints and receipts (one JWKS).
    assert settings.signing_key is not None  # generated in development, required in production
    certificate_signer = CertificateSigner(load_signing_key(settings.signing_key.get_secret_value()))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
        session_factory = make_session_factory(engine)
        read_engine = make_read_engine(settings.database_url, pool_size=settings.database_pool_size)
        # consentCheck's statement through asyncpg directly on PostgreSQL (db/hot_reads.py).
        hot_reads = (
            HotReadPool(asyncpg_options(settings.database_url), size=settings.database_pool_size)
            if read_engine.dialect.name == "postgresql"
            else None
        )
        if hot_reads is not None:
            await hot_reads.open()
        http_client = httpx.AsyncClient(timeout=10.0, transport=http_transport)

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(session_factory)

        if settings.encryption_key is None:  # filled in development, required in production
            raise RuntimeError("DSR_ENCRYPTION_KEY is required")
        secret_box = SecretBox(settings.encryption_key.get_secret_value())
        export_service = build_export_service(settings, uow)
        connectors = build_connectors_for(settings, systems, http_client, engine)
        planner = FulfilmentPlanner(systems_info(systems))
        events = build_event_bus(settings)
        if isinstance(events, PostgresEventBus):
            await events.start()
        composer = build_composer(settings)
        receipts = ReceiptService(uow, signer, controller_from(settings), utc_now)
        write_batches = ConsentWriteMetrics(registry)
        consent = build_consent_service(
            settings,
            uow,
            read_engine,
            hot_reads=hot_reads,
            engine=engine,
            on_write_batch=write_batches.observe,
        )
        followups = build_consent_followups(settings, uow, receipts, composer)
        request_services = build_request_services(settings, uow, events, planner)
        comms = build_comms_services(settings, uow, consent, composer, systems)
        services = Services(
            catalogue=CatalogueService(uow, utc_now, events, NoticeAnnouncer(utc_now, composer)),
            api_keys=ApiKeyService(uow, utc_now),
            events=events,
            audit=audit_service(engine, settings),
            receipts=receipts,
            webhooks=WebhookService(
                uow,
                utc_now,
                secret_box,
                allow_plain_http=settings.is_development,
                allow_private_addresses=settings.webhooks_may_reach_private_addresses,
            ),
            exports=export_service,
            consent=consent,
            consent_followups=followups,
            **request_services,
            **build_fulfilment(
                settings,
                systems,
                connectors,
                uow,
                request_services["request_actions"],
                export_service,
                consent,
            ),
            reports=ReportService(uow, SqlReportQueries(engine), utc_now),
            audit_trail=AuditTrailService(SqlAuditTrail(engine), utc_now),
            **comms,
        )
        lifecycle: ConsentLifecycleService = comms["consent_lifecycle"]
        # consentCheck reads: recorded in the background, once per distinct read per window (docs/audit.md).
        access_batcher = AccessBatcher(
            SqlAuditTrail(engine), utc_now, window=settings.access_log_window_seconds
        )
        stop_batcher = asyncio.Event()
        batcher_task = asyncio.create_task(access_batcher.run(stop_batcher))
        gauges = OperationalGauges(registry, SqlOperationalQueries(engine))
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
                    fulfilment=services.fulfilment,
                    metrics=worker_metrics,
                    checkpoint=services.audit.scheduled_checkpoint,
                    consent_expiry=lifecycle.expire_due,
                    webhooks=webhook_step(build_webhook_sender(settings, uow, http_client, secret_box)),
                    consent_followups=followups.run_until_idle,
                    export_cleanup=export_service.delete_expired,
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

        link_signer = build_link_signer(settings)
        message_templates = composer.renderer

        async def database_ping() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        try:
            yield {
                "services": services,
                "authenticator": Authenticator(jwt_config, services.api_keys.authenticate, jwks),
                "database_ping": database_ping,
                "metrics_registry": registry,
                "metrics_refresh": gauges.refresh,
                "graphql_metrics": graphql_metrics,
                "worker_metrics": worker_metrics,
                "access_batcher": access_batcher,
                "hot_reads": hot_reads,
                "signing_jwks": signer.jwks(),
                # Communication (docs/communication.md): the one-click links and the Sec-GPC recorder.
                "link_signer": link_signer,
                "unsubscribe_withdraw": lifecycle.unsubscribe,
                "reconfirm_consent": lifecycle.reconfirm,
                "record_gpc": lifecycle.record_gpc,
                "unsubscribe_links": UnsubscribeLinks(link_signer, settings.public_url),
                "message_templates": message_templates,
                # Fulfilment, for the request worker: the systems file, a connector per SQL/HTTP system.
                "systems": systems,
                "connectors": connectors,
                "certificate_signer": certificate_signer,
            }
        finally:
            stop_batcher.set()
            await batcher_task
            stop_worker.set()
            if worker_task is not None:
                await worker_task
            # After the worker: a fulfilment step still running would reopen a closed connector's pool.
            await close_connectors(connectors)
            if isinstance(events, PostgresEventBus):
                await events.close()
            await http_client.aclose()
            await consent.aclose()  # consent writes still being written (group commit)
            await engine.dispose()
            await read_engine.dispose()
            if hot_reads is not None:
                await hot_reads.aclose()

    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(MetricsMiddleware, metrics=HttpMetrics(registry)),
        Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(AuthenticationMiddleware),
        Middleware(GpcMiddleware),
    ]
    routes = [
        # First: the router tries routes in order, and nearly every request is GraphQL.
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/.well-known/jwks.json", wellknown.jwks, methods=["GET"]),
        Route("/exports/{token}", exports.download, methods=["GET"]),
        Route("/callbacks/fulfilment/{request_id}/{step}", callbacks.fulfilment_callback, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe.unsubscribe_post, methods=["POST"]),
        Route("/reconfirm/{token}", reconfirm.reconfirm_page, methods=["GET"]),
        Route("/reconfirm/{token}", reconfirm.reconfirm_post, methods=["POST"]),
        Route("/.well-known/gpc.json", unsubscribe.make_gpc_json(settings.gpc_last_update), methods=["GET"]),
        WebSocketRoute("/graphql", graphql_app),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def app_from_environment() -> Starlette:
    """The uvicorn factory for `dsr-gateway serve`: settings from the environment."""
    app = create_app(Settings())
    tune_garbage_collector()
    return app
