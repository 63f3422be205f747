"""`dsr-gateway campaign reconfirm`, and the communication pieces of `worker` and `sweep`."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from dsr_gateway.settings import Settings

if TYPE_CHECKING:  # cli.py imports this module for every command: keep it light
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
    from sqlmodel.ext.asyncio.session import AsyncSession

DURATION = re.compile(r"^(\d+)d?$")


def add_campaign_parser(commands: Any) -> None:
    campaign = commands.add_parser("campaign", help="reconfirmation campaigns (consent reviews)")
    actions = campaign.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    reconfirm = actions.add_parser(
        "reconfirm",
        help="send a reconfirmation reminder to each subject whose consent falls due soon",
        description="Queues one reminder with a signed one-click link per subject whose consent to the "
        "purpose falls due within the window; subjects reminded within DSR_CAMPAIGN_MIN_INTERVAL_DAYS are "
        "skipped. The worker sends the queued messages.",
    )
    reconfirm.add_argument("--purpose", required=True, help="the purpose key")
    reconfirm.add_argument("--due-within", default="30d", help="a number of days, e.g. 30d (default)")


def parse_days(text: str) -> int:
    match = DURATION.match(text.strip())
    if match is None:
        raise SystemExit(f"--due-within: give a number of days such as 30d, not {text!r}")
    return int(match.group(1))


def comms_extras(
    settings: Settings,
    engine: AsyncEngine,
    factory: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
) -> tuple[Any, Any]:
    """The consent lifecycle service (expiry sweep) and the webhook step, for the worker and the sweep."""
    from dsr_gateway.app import (
        build_comms_services,
        build_composer,
        build_consent_service,
        build_webhook_sender,
        utc_now,
        webhook_step,
    )
    from dsr_gateway.connectors.secret_box import SecretBox
    from dsr_gateway.connectors.systems_config import SystemsConfig, load_systems
    from dsr_gateway.db.uow import SqlUnitOfWork
    from dsr_gateway.services.comms.consent_effects import ConsentEffects

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(factory)

    composer = build_composer(settings)
    consent = build_consent_service(
        settings, uow, engine, effects=ConsentEffects(utc_now, composer), engine=engine
    )
    systems = load_systems(settings.systems_file) if settings.systems_file else SystemsConfig()
    comms = build_comms_services(settings, uow, consent, composer, systems)
    assert settings.encryption_key is not None
    sender = build_webhook_sender(settings, uow, http, SecretBox(settings.encryption_key.get_secret_value()))
    return comms, webhook_step(sender)


def campaign(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_campaign(settings, args.purpose, parse_days(args.due_within)))


async def _campaign(settings: Settings, purpose: str, days: int) -> int:
    import httpx

    from dsr_gateway.db.engine import make_engine, make_session_factory
    from dsr_gateway.db.migrate import upgrade
    from dsr_gateway.domain.errors import DomainError
    from dsr_gateway.domain.principal import Principal

    settings = settings.with_development_secrets()
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with httpx.AsyncClient() as http:
            comms, _ = comms_extras(settings, engine, make_session_factory(engine), http)
            try:
                result = await comms["reviews"].start_campaign(Principal.system(), purpose, days)
            except DomainError as exc:
                print(f"Nothing was queued: {exc.message}")
                return 1
    finally:
        await engine.dispose()
    print(
        f"Campaign {result.purpose}: {result.due_subjects} subjects due within {days} days, "
        f"{result.queued} reminders queued ({result.no_address} without an address), "
        f"{result.skipped_recently_sent} skipped (reminded recently)."
    )
    return 0
