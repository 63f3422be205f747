"""The request services on real databases with a clock the test moves: codes, the sweep, the sender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dsr_gateway.app import build_cipher, build_composer, build_sla_clock
from dsr_gateway.connectors.events import InProcessEventBus
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.errors import Conflict, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.domain.privacy_requests import OutboxStatus
from dsr_gateway.domain.requests import RequestStatus, RequestType
from dsr_gateway.domain.sla import Jurisdiction
from dsr_gateway.services.outbox import OutboxService
from dsr_gateway.services.ports import DeliveryFailed
from dsr_gateway.services.requests import (
    RequestIntakeService,
    SlaSweepService,
    SubmitCommand,
)
from tests.support.app import make_settings

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class MovableClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    clock: MovableClock
    intake: RequestIntakeService
    sweep: SlaSweepService
    outbox: OutboxService
    events: InProcessEventBus
    uow: object


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    settings = make_settings(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(factory)

    clock, events = MovableClock(), InProcessEventBus()
    sla, cipher = build_sla_clock(settings), build_cipher(settings)
    yield Harness(
        clock,
        RequestIntakeService(uow, clock, events, cipher, sla, build_composer(settings)),
        SlaSweepService(uow, clock, events, sla),
        OutboxService(uow, clock, cipher),
        events,
        uow,
    )
    await engine.dispose()


ANON = Principal.anonymous()
STAFF = Principal(PrincipalKind.STAFF, id="agent-1", roles=frozenset({Role.AGENT}))


async def _anonymous(h: Harness, email: str = "amy@example.com") -> str:
    submitted = await h.intake.submit(
        ANON, SubmitCommand(RequestType.ACCESS, Jurisdiction.GDPR, {}, email=email)
    )
    return submitted.request.id


async def test_five_wrong_codes_lock_the_challenge_and_reject_the_request(harness: Harness) -> None:
    request_id = await _anonymous(harness)
    for left in (4, 3, 2, 1):
        with pytest.raises(ValidationFailed, match=f"{left} attempt"):
            await harness.intake.verify(ANON, request_id, "999999x")
    with pytest.raises(Conflict, match="Too many wrong codes"):
        await harness.intake.verify(ANON, request_id, "999999x")
    async with harness.uow() as uow:  # type: ignore[operator]
        request = await uow.requests.get(request_id)
        events = await uow.requests.events_for([request_id])
    assert request.status is RequestStatus.REJECTED
    assert events[request_id][0].reason == "IDENTITY_NOT_VERIFIED"
    with pytest.raises(Conflict):
        await harness.intake.verify(ANON, request_id, "123456")


async def test_an_expired_code_is_refused_and_a_resend_waits_for_its_cooldown(harness: Harness) -> None:
    request_id = await _anonymous(harness)
    with pytest.raises(Conflict, match="Wait 60 seconds"):
        await harness.intake.resend_code(ANON, request_id)
    harness.clock.now = T0 + timedelta(minutes=10)
    with pytest.raises(ValidationFailed, match="expired"):
        await harness.intake.verify(ANON, request_id, "123456")
    next_at = await harness.intake.resend_code(ANON, request_id)
    assert next_at == harness.clock.now + timedelta(seconds=60)
    messages = await harness.outbox.listing(STAFF)
    assert [m.kind.value for m in messages] == ["VERIFICATION_CODE", "VERIFICATION_CODE"]


async def test_the_sweep_moves_requests_to_at_risk_then_overdue_and_alerts_once(harness: Harness) -> None:
    submitted = await harness.intake.submit(
        STAFF,
        SubmitCommand(RequestType.ACCESS, Jurisdiction.CCPA, {}, subject_external_id="sam"),
    )
    request_id = submitted.request.id
    assert submitted.request.sla_status == "ON_TRACK"
    alerts = harness.events.subscribe("sla_alerts")
    first_alert = asyncio.create_task(_next(alerts))
    await asyncio.sleep(0)  # let the subscriber join before anything is published

    harness.clock.now = T0 + timedelta(days=20)
    assert (await harness.sweep.sweep()).changed == 0
    harness.clock.now = T0 + timedelta(days=38)  # 45-day period: at risk within 9 days of the end
    result = await harness.sweep.sweep()
    assert (result.changed, result.alerts) == (1, 1)
    alert = await asyncio.wait_for(first_alert, timeout=10)
    assert alert["kind"] == "AT_RISK"
    assert alert["requestId"] == request_id
    assert (await harness.sweep.sweep()).changed == 0

    harness.clock.now = T0 + timedelta(days=46)
    result = await harness.sweep.sweep()
    assert (result.changed, result.alerts) == (1, 1)
    async with harness.uow() as uow:  # type: ignore[operator]
        stored = await uow.requests.get(request_id)
    assert stored.sla_status == "OVERDUE"
    assert stored.version == 1  # the sweep's bookkeeping is not an edit
    assert (await harness.sweep.sweep()).examined == 0
    await alerts.aclose()


async def _next(iterator: AsyncIterator[dict[str, object]]) -> dict[str, object]:
    return await iterator.__anext__()


class FlakyMailer:
    def __init__(self, failures: int, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.sent: list[tuple[str, str]] = []

    @property
    def configured(self) -> bool:
        return True

    async def send(
        self, to: str, subject: str, body: str, html: str | None = None, headers: dict[str, str] | None = None
    ) -> str:
        if self.failures:
            self.failures -= 1
            raise DeliveryFailed("421 try later", permanent=self.permanent)
        self.sent.append((to, body))
        return "250 OK"


async def test_the_sender_retries_with_backoff_and_logs_every_attempt(harness: Harness) -> None:
    request_id = await _anonymous(harness)
    mailer = FlakyMailer(failures=2)
    run = await harness.outbox.deliver_due(mailer)
    assert (run.sent, run.failed) == (0, 1)
    assert (await harness.outbox.deliver_due(mailer)).failed == 0  # not due again yet
    harness.clock.now = T0 + timedelta(seconds=31)
    assert (await harness.outbox.deliver_due(mailer)).failed == 1
    harness.clock.now = T0 + timedelta(seconds=31 + 61)
    assert (await harness.outbox.deliver_due(mailer)).sent == 1
    assert mailer.sent[0][0] == "amy@example.com"
    staff = STAFF
    [message] = await harness.outbox.listing(staff, request_id)
    assert message.status is OutboxStatus.SENT
    log = (await harness.outbox.deliveries(staff, [message.id]))[message.id]
    assert [(d.attempt, d.succeeded) for d in log] == [(1, False), (2, False), (3, True)]


async def test_a_refused_address_is_not_retried(harness: Harness) -> None:
    request_id = await _anonymous(harness)
    await harness.outbox.deliver_due(FlakyMailer(failures=1, permanent=True))
    staff = STAFF
    [message] = await harness.outbox.listing(staff, request_id)
    assert message.status is OutboxStatus.FAILED
    assert message.last_error == "421 try later"


async def test_a_full_batch_of_alerted_requests_never_starves_the_rest(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests already at risk and alerted need nothing until they fall due; they must not fill the
    sweep's batches so that a request turning at risk behind them is never looked at."""
    monkeypatch.setattr("dsr_gateway.services.requests.sweep.BATCH", 2)
    ids = []
    # Two PIPEDA requests (30 days, at risk from day 24) and a CCPA one received 12 days earlier (due day 33,
    # at risk from day 24 too), all logged by an agent with their real receipt times.
    for jurisdiction, received in (
        (Jurisdiction.PIPEDA, T0),
        (Jurisdiction.PIPEDA, T0),
        (Jurisdiction.CCPA, T0 - timedelta(days=12)),
    ):
        submitted = await harness.intake.submit(
            STAFF,
            SubmitCommand(
                RequestType.ACCESS, jurisdiction, {}, subject_external_id=f"s{len(ids)}", received_at=received
            ),
        )
        ids.append(submitted.request.id)
    harness.clock.now = T0 + timedelta(days=25)
    first = await harness.sweep.sweep()
    assert (first.changed, first.alerts) == (3, 3)  # every batch of the sweep, not only the first
    again = await harness.sweep.sweep()
    assert (again.examined, again.changed, again.alerts) == (0, 0, 0)  # alerted, not yet due: nothing to do
    async with harness.uow() as uow:  # type: ignore[operator]
        stored = await uow.requests.many(ids)
    assert {r.sla_status for r in stored.values()} == {"AT_RISK"}
