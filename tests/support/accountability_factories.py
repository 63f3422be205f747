"""Services on the test's database with a clock the test moves: for reports, chains and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import build_cipher, build_composer, build_sla_clock, create_app
from dsr_gateway.connectors.events import InProcessEventBus
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.read_engine import make_read_engine
from dsr_gateway.db.repositories.consent_reads import SqlConsentReader
from dsr_gateway.db.repositories.reports import SqlReportQueries
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.reports import ReportService
from dsr_gateway.services.requests import RequestActionService, RequestIntakeService
from tests.support.app import GraphQLClient, make_settings

AGENT = Principal(PrincipalKind.STAFF, id="agent-1", roles=frozenset({Role.AGENT}))


class MovableClock:
    def __init__(self, now: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Workbench:
    clock: MovableClock
    consent: ConsentService
    intake: RequestIntakeService
    actions: RequestActionService
    reports: ReportService


@asynccontextmanager
async def workbench(database_url: str) -> AsyncIterator[Workbench]:
    settings = make_settings(database_url)
    engine, read_engine = make_engine(database_url), make_read_engine(database_url)
    factory = make_session_factory(engine)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(factory)

    clock, events = MovableClock(), InProcessEventBus()
    sla, cipher = build_sla_clock(settings), build_cipher(settings)
    try:
        yield Workbench(
            clock,
            ConsentService(uow, clock, SqlConsentReader(read_engine)),
            RequestIntakeService(uow, clock, events, cipher, sla, build_composer(settings)),
            RequestActionService(uow, clock, events, cipher, sla, build_composer(settings)),
            ReportService(uow, SqlReportQueries(engine), clock),
        )
    finally:
        await engine.dispose()
        await read_engine.dispose()


@dataclass
class Live:
    """The app with its lifespan state (the access batcher, the worker's counters ...)."""

    gql: GraphQLClient
    state: dict[str, Any]


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[Live]:
    application = create_app(make_settings(database_url))
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield Live(GraphQLClient(http, manager.app), manager._state)  # type: ignore[arg-type]
