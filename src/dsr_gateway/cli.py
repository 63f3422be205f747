"""The dsr-gateway command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from dsr_gateway import __version__
from dsr_gateway.cli_comms import add_campaign_parser
from dsr_gateway.settings import Settings

if TYPE_CHECKING:
    from dsr_gateway.worker.metrics import WorkerMetrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "export-schema":
        return _export_schema()
    try:
        settings = Settings()
    except ValidationError as exc:
        print(_settings_message(exc), file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    handler = {
        "serve": _serve,
        "migrate": _migrate,
        "apikey": _apikey,
        "dev-tokens": _dev_tokens,
        "audit": _audit,
        "import-consents": _import_consents,
        "worker": _worker,
        "sweep": _sweep,
        "report": _report,
        "campaign": _campaign,
    }[args.command]
    return handler(settings, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsr-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dsr-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="migrate the database, then serve the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    commands.add_parser("migrate", help="upgrade the database to the latest schema")
    commands.add_parser("export-schema", help="print the GraphQL SDL (committed as schema.graphql)")
    apikey = commands.add_parser("apikey", help="manage API keys for machine clients")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = apikey_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, nargs="+", help="e.g. consent:read export:read")
    apikey_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = apikey_commands.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("--name", required=True)
    tokens = commands.add_parser("dev-tokens", help="print working tokens for a subject, an agent, an admin")
    tokens.add_argument("--subject", default="customer-1", help="the subject's external id")
    tokens.add_argument("--hours", type=int, default=12)
    audit = commands.add_parser("audit", help="the tamper-evident ledger: verify it, sign a checkpoint")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_commands.add_parser("verify", help="re-check every chain and checkpoint; exit 1 on a break")
    audit_commands.add_parser("checkpoint", help="sign the current head of every chain")
    importer = commands.add_parser(
        "import-consents",
        help="import consents from an earlier system (CSV), recorded with the IMPORT method",
        description="Columns (header line required): subject_id, purpose, action (GRANT, WITHDRAW, OBJECT, "
        "RECONFIRM, EXPIRE, GPC_OPT_OUT), occurred_at (ISO 8601 with offset); optional: topic, channel, "
        "notice_version, source. Valid rows are imported in one transaction; rejected rows are listed "
        "with their line numbers.",
    )
    importer.add_argument("file", help="the CSV file (UTF-8)")
    importer.add_argument("--dry-run", action="store_true", help="check every row, record nothing")
    importer.add_argument("--strict", action="store_true", help="import nothing if any row is rejected")
    worker = commands.add_parser(
        "worker",
        help="run the outbox and webhook senders, the SLA and consent expiry sweeps, the fulfilment steps "
        "and the checkpoints until stopped",
    )
    worker.add_argument("--once", action="store_true", help="one pass of each loop, then exit")
    commands.add_parser("sweep", help="run the SLA sweep and the consent expiry sweep once")
    add_campaign_parser(commands)
    report = commands.add_parser(
        "report",
        help="the compliance report over [--from, --to) as CSV (one section per table) or JSON",
        description="Consents by purpose and state, consent activity per month, consents due for review, "
        "requests by type, jurisdiction and outcome, timeliness. Dates are UTC; --to is exclusive.",
    )
    report.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD or an ISO 8601 date-time")
    report.add_argument(
        "--to", dest="end", required=True, help="YYYY-MM-DD or an ISO 8601 date-time (exclusive)"
    )
    report.add_argument("--format", choices=["csv", "json"], default="csv")
    return parser


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from dsr_gateway.cli_report import report

    return asyncio.run(report(settings.database_url, args.start, args.end, args.format))


def _campaign(settings: Settings, args: argparse.Namespace) -> int:
    from dsr_gateway.cli_comms import campaign

    return campaign(settings, args)


def _import_consents(settings: Settings, args: argparse.Namespace) -> int:
    from dsr_gateway.cli_consent import import_consents
    from dsr_gateway.gc_tuning import tune_garbage_collector

    tune_garbage_collector()  # the chunks' rows are short-lived: a fifth of the CPU went to the collector
    return asyncio.run(import_consents(settings.database_url, args.file, args.dry_run, args.strict))


def _settings_message(exc: ValidationError) -> str:
    lines = ["dsr-gateway cannot start: the configuration is not valid."]
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        name = f"DSR_{where.upper()}" if where else "settings"
        lines.append(f"  {name}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _configure_logging(level: str) -> None:
    from dsr_gateway.http.logging import configure_logging

    configure_logging(level)


def _export_schema() -> int:
    from dsr_gateway.graphql.schema import build_schema

    print(build_schema().as_str())
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_upgrade(settings))
    print("The database is at the latest schema.")
    return 0


async def _upgrade(settings: Settings) -> None:
    from dsr_gateway.db.engine import make_engine
    from dsr_gateway.db.migrate import upgrade

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    asyncio.run(_upgrade(settings))
    # Make the development secrets file now: worker processes would race to create it.
    settings.with_development_secrets()
    logging.getLogger("dsr_gateway").info(
        "serving on http://%s:%s/graphql (%s, %s)",
        args.host,
        args.port,
        settings.env.value,
        settings.database_url.split("://")[0],
    )
    uvicorn.run(
        "dsr_gateway.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        workers=None if args.reload else args.workers,
        proxy_headers=True,
        log_config=None,
    )
    return 0


def _apikey(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_apikey_async(settings, args))


async def _apikey_async(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from dsr_gateway.db.engine import make_engine, make_session_factory
    from dsr_gateway.db.migrate import upgrade
    from dsr_gateway.db.uow import SqlUnitOfWork
    from dsr_gateway.domain.errors import DomainError
    from dsr_gateway.services.api_keys import ApiKeyService

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        factory = make_session_factory(engine)
        service = ApiKeyService(lambda: SqlUnitOfWork(factory), lambda: datetime.now(UTC))
        try:
            if args.apikey_command == "create":
                created = await service.create(args.name, args.scopes)
                print(
                    f"Created API key {created.record.name!r} with scopes {' '.join(created.record.scopes)}."
                )
                print("It is shown only this once; store it now:")
                print(created.key)
            elif args.apikey_command == "list":
                for record in await service.list():
                    state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
                    print(f"{record.name}\t{record.prefix}...\t{' '.join(record.scopes)}\t{state}")
            else:
                await service.revoke(args.name)
                print(f"Revoked API key {args.name!r}; it stops working within 30 seconds.")
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
    finally:
        await engine.dispose()
    return 0


def _dev_tokens(settings: Settings, args: argparse.Namespace) -> int:
    from dsr_gateway.http.auth import mint_token

    if not settings.is_development:
        print("error: dev-tokens works only with DSR_ENV=development.", file=sys.stderr)
        return 1
    settings = settings.with_development_secrets()
    if settings.jwt_secret is None:
        print(
            "error: dev-tokens signs with DSR_JWT_SECRET; with only DSR_JWKS_URL set, get tokens from "
            "your identity provider.",
            file=sys.stderr,
        )
        return 1
    secret = settings.jwt_secret.get_secret_value()
    common = {
        "lifetime_seconds": args.hours * 3600,
        "audience": settings.jwt_audience,
        "issuer": settings.jwt_issuer,
    }
    print('# Paste one into GraphiQL\'s headers as {"Authorization": "Bearer <token>"}')
    print(f"SUBJECT_TOKEN={mint_token(secret, args.subject, **common)}")
    print(f"AGENT_TOKEN={mint_token(secret, 'agent-1', roles=['agent'], **common)}")
    print(f"ADMIN_TOKEN={mint_token(secret, 'admin-1', roles=['admin'], **common)}")
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_audit_async(settings, args))


async def _audit_async(settings: Settings, args: argparse.Namespace) -> int:
    from dsr_gateway.app import audit_service
    from dsr_gateway.db.engine import make_engine
    from dsr_gateway.db.migrate import upgrade
    from dsr_gateway.domain.errors import DomainError
    from dsr_gateway.domain.principal import Principal

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        audit = audit_service(engine, settings)
        if args.audit_command == "checkpoint":
            try:
                checkpoint = await audit.create_checkpoint(Principal.system())
            except DomainError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
            print(
                f"Checkpoint {checkpoint.id}: {len(checkpoint.heads)} chains, root {checkpoint.root}, "
                f"key {checkpoint.key_id}"
            )
            print(checkpoint.jws)
            return 0
        report = await audit.verify(Principal.system())
    finally:
        await engine.dispose()
    print(
        f"Checked {report.chains_checked} chains, {report.events_checked} events, "
        f"{report.checkpoints_checked} checkpoints."
    )
    if report.first_break:
        b = report.first_break
        print(
            f"BROKEN chain {b.chain_key}: event {b.event_id} (sequence {b.sequence}) {b.problem.value}: "
            f"{b.detail}. {report.broken_chains} chain(s) broken in all."
        )
    for finding in report.checkpoint_findings:
        where = f" chain {finding.chain_key}" if finding.chain_key else ""
        print(f"CHECKPOINT {finding.checkpoint_id}{where} {finding.problem.value}: {finding.detail}")
    if report.ok:
        print("OK: every chain and checkpoint verifies.")
        return 0
    return 1


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_worker_async(settings, once=args.once))


def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_worker_async(settings, once=True, sweep_only=True))


async def _worker_async(settings: Settings, *, once: bool, sweep_only: bool = False) -> int:
    import signal

    import httpx

    from dsr_gateway.app import (
        audit_service,
        build_connectors_for,
        build_consent_followups,
        build_consent_service,
        build_event_bus,
        build_export_service,
        build_fulfilment,
        build_mailer,
        build_request_services,
        systems_info,
        worker_config,
    )
    from dsr_gateway.cli_comms import comms_extras
    from dsr_gateway.connectors.pg_events import PostgresEventBus
    from dsr_gateway.connectors.registry import close_connectors
    from dsr_gateway.connectors.systems_config import SystemsConfig, load_systems
    from dsr_gateway.db.engine import make_engine, make_session_factory
    from dsr_gateway.db.migrate import upgrade
    from dsr_gateway.db.read_engine import make_read_engine
    from dsr_gateway.db.uow import SqlUnitOfWork
    from dsr_gateway.services.fulfilment.planner import FulfilmentPlanner
    from dsr_gateway.worker.loops import run_worker

    settings = settings.with_development_secrets()
    systems = load_systems(settings.systems_file) if settings.systems_file else SystemsConfig()
    engine = make_engine(settings.database_url)
    read_engine = make_read_engine(settings.database_url)
    http_client = httpx.AsyncClient(timeout=10.0)
    events = build_event_bus(settings)
    connectors = {}
    try:
        await upgrade(engine)
        factory = make_session_factory(engine)
        if isinstance(events, PostgresEventBus):
            await events.start()

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(factory)

        planner = FulfilmentPlanner(systems_info(systems))
        services = build_request_services(settings, uow, events, planner)
        connectors = build_connectors_for(settings, systems, http_client, engine)
        consent = build_consent_service(settings, uow, read_engine, engine=engine)
        followups = build_consent_followups(settings, uow)
        exports = build_export_service(settings, uow)
        fulfilment = build_fulfilment(
            settings,
            systems,
            connectors,
            uow,
            services["request_actions"],
            exports,
            consent,
        )["fulfilment"]
        mailer = build_mailer(settings)
        metrics = _worker_metrics(settings, serve=not once)
        comms, send_webhooks = comms_extras(settings, engine, factory, http_client)
        if once:
            result = await services["sla_sweep"].sweep()
            print(f"SLA sweep: {result.examined} examined, {result.changed} changed, {result.alerts} alerts.")
            expiry = await comms["consent_lifecycle"].expire_due()
            held = f" ({expiry.held} subjects held by an import: the next run)" if expiry.held else ""
            print(f"Consent expiry: {expiry.expired} consents of {expiry.subjects} subjects expired{held}.")
            followed = await followups.run_until_idle()
            print(
                f"Consent follow-ups: {followed.events} events, {followed.receipts} receipts, "
                f"{followed.messages} messages."
            )
            cleaned = await exports.delete_expired()
            print(
                f"Access packages: {cleaned.expired} expired packages' files deleted, "
                f"{cleaned.orphans} unrecorded files deleted."
            )
            if not sweep_only:
                steps = await fulfilment.run_due()
                print(
                    f"Fulfilment: {steps.done} steps done, {steps.retrying} to retry, {steps.failed} failed, "
                    f"{steps.waiting} waiting for a callback, {steps.settled} requests settled."
                )
                run = await services["outbox"].deliver_due(mailer)
                print(f"Outbox: {run.sent} sent, {run.failed} failed, {run.held} held (no SMTP host).")
                await send_webhooks()
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("dsr_gateway").info(
            "worker started: outbox sender, SLA sweep, fulfilment steps, checkpoints, consent follow-ups, "
            "access package clean-up"
        )
        audit = audit_service(engine, settings)
        await run_worker(
            services["outbox"],
            services["sla_sweep"],
            mailer,
            worker_config(settings),
            stop,
            fulfilment=fulfilment,
            metrics=metrics,
            checkpoint=audit.scheduled_checkpoint,
            consent_expiry=comms["consent_lifecycle"].expire_due,
            webhooks=send_webhooks,
            consent_followups=followups.run_until_idle,
            export_cleanup=exports.delete_expired,
        )
    finally:
        await close_connectors(connectors)
        if isinstance(events, PostgresEventBus):
            await events.close()
        await http_client.aclose()
        await engine.dispose()
        await read_engine.dispose()
    return 0


def _worker_metrics(settings: Settings, *, serve: bool) -> WorkerMetrics:
    """The worker's counters; a running worker serves them on DSR_WORKER_METRICS_PORT when set (the app
    serves its own). A one-pass `sweep` or `worker --once` does not: a cron job beside a running worker
    would find the port taken."""
    from prometheus_client import CollectorRegistry, start_http_server

    from dsr_gateway.worker.metrics import WorkerMetrics

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    if serve and settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, registry=registry)
    return metrics


if __name__ == "__main__":
    raise SystemExit(main())
