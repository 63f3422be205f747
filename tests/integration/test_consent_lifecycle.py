"""The consent lifecycle with a movable clock on both databases: the expiry sweep (period + grace,
EXPIRE by the system, the webhook and the message queued with it), GPC recorded once per purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from dsr_gateway.app import build_composer
from dsr_gateway.connectors.events import InProcessEventBus
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.repositories.consent_reads import SqlConsentReader
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent import ConsentAction, ConsentMethod, ConsentReason
from dsr_gateway.domain.consent_rules import ConsentChoice
from dsr_gateway.domain.errors import HeldTooLong
from dsr_gateway.domain.notices import DataCategory, NoticeDraft, NoticePurpose
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.domain.purposes import ConsentMechanism, LegalBasis, Purpose, PurposeCategory
from dsr_gateway.services.catalogue import CatalogueService
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_followups import ConsentFollowUps
from dsr_gateway.services.consent_lifecycle import ConsentLifecycleService
from dsr_gateway.services.consent_writes import SetConsentsRequest
from tests.support import databases
from tests.support.app import make_settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADMIN = Principal(PrincipalKind.STAFF, id="admin-1", roles=frozenset({Role.ADMIN}))
STAFF = Principal(PrincipalKind.STAFF, id="agent-1", roles=frozenset({Role.AGENT}))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    clock: Clock
    consent: ConsentService
    lifecycle: ConsentLifecycleService
    uow: object
    followups: ConsentFollowUps


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    settings = make_settings(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(factory)

    clock = Clock()
    effects = ConsentEffects(clock, build_composer(settings))
    consent = ConsentService(uow, clock, SqlConsentReader(engine), effects=effects)
    catalogue = CatalogueService(uow, clock, InProcessEventBus())
    for purpose in (
        Purpose("newsletter", "Newsletter", "Our weekly news.", LegalBasis.CONSENT, ConsentMechanism.OPT_IN,
                PurposeCategory.MARKETING, reconfirm_after_days=30),
        Purpose("ad_sharing", "Ad sharing", "Sharing for ads.", LegalBasis.LEGITIMATE_INTEREST,
                ConsentMechanism.OPT_OUT, PurposeCategory.THIRD_PARTY_SHARING, gpc_opt_out=True),
    ):  # fmt: skip
        await catalogue.upsert_purpose(ADMIN, purpose)
    await catalogue.publish_notice(
        ADMIN,
        NoticeDraft(
            "Plain words.",
            (DataCategory("contact", "Email", ("newsletter",), (), "Until you leave"),),
            (NoticePurpose("newsletter", "", "", False), NoticePurpose("ad_sharing", "", "", False)),
        ),
    )
    lifecycle = ConsentLifecycleService(uow, clock, consent, effects, timedelta(days=7))
    yield World(clock, consent, lifecycle, uow, ConsentFollowUps(uow, clock, None, effects))
    await engine.dispose()


def subject(who: str) -> Principal:
    return Principal(PrincipalKind.SUBJECT, id=who)


async def grant(world: World, who: str, purpose: str, principal: Principal | None = None) -> None:
    await world.consent.set_consents(
        principal or subject(who),
        SetConsentsRequest(who, [ConsentChoice(purpose, True)], ConsentMethod.CHECKBOX if principal is None
                           else None, notice_version=1),
    )  # fmt: skip


async def test_the_sweep_expires_after_the_period_and_the_grace_and_tells_the_subject(world: World) -> None:
    await grant(world, "e-1", "newsletter")
    world.clock.now = T0 + timedelta(days=10)
    await grant(world, "e-2", "newsletter")
    world.clock.now = T0 + timedelta(days=36, hours=23)  # e-1: 30 days + 7 of grace not yet over
    assert (await world.lifecycle.expire_due()).expired == 0
    e1, e2 = await world.consent.check(STAFF, "newsletter", ["e-1", "e-2"])
    assert e1.reason is ConsentReason.EXPIRED  # lapsed for decisions already; no event yet
    assert e2.reason is ConsentReason.GRANTED
    world.clock.now = T0 + timedelta(days=37)
    run = await world.lifecycle.expire_due()
    assert (run.subjects, run.expired) == (1, 1)
    assert (await world.lifecycle.expire_due()).expired == 0  # recorded once
    page = await world.consent.events(STAFF, "e-1", None, 10, None)
    last = page.entries[0][1].event
    assert (last.action, last.method, last.actor.id) == (ConsentAction.EXPIRE, ConsentMethod.SYSTEM, "expiry")
    assert (await world.followups.run_until_idle()).messages == 1  # after the change, from the ledger
    async with world.uow() as uow:  # type: ignore[operator]
        kinds = [m.kind.value for m in await uow.outbox.listing(None, 10, None)]
    assert kinds == ["PERMISSION_CHANGED"]  # the system changed it: the subject is told (NO_ADDRESS here)
    # Reconfirming an expired consent (a late click on the reminder) grants it again.
    assert await world.lifecycle.reconfirm("e-1", "newsletter") == 1
    assert (await world.consent.check(STAFF, "newsletter", ["e-1"]))[0].reason is ConsentReason.GRANTED


async def test_gpc_is_recorded_once_per_purpose_and_a_conflict_only_over_an_opt_in(world: World) -> None:
    await grant(world, "g-1", "ad_sharing")
    assert await world.lifecycle.record_gpc("g-1") == 1
    assert await world.lifecycle.record_gpc("g-1") == 0
    assert await world.lifecycle.record_gpc("g-2") == 1
    [[conflict], none] = await world.lifecycle.gpc_conflicts(["g-1", "g-2"])
    assert none == []
    assert (conflict.purpose, conflict.granted_at) == ("ad_sharing", T0)
    decisions = await world.consent.check(STAFF, "ad_sharing", ["g-1", "g-2", "g-3"])
    assert [d.reason for d in decisions] == [
        ConsentReason.GPC_OPT_OUT, ConsentReason.GPC_OPT_OUT, ConsentReason.NOT_REQUIRED,
    ]  # fmt: skip
    await grant(world, "g-1", "ad_sharing")  # an informed opt-in after the conflict
    assert await world.lifecycle.record_gpc("g-1") == 0
    assert (await world.lifecycle.gpc_conflicts(["g-1"])) == [[]]
    assert (await world.consent.check(STAFF, "ad_sharing", ["g-1"]))[0].reason is ConsentReason.GRANTED


def impatient(world: World, database_url: str, lock_timeout: float = 0.2) -> ConsentLifecycleService:
    """The lifecycle service with this lock timeout (PostgreSQL: SQLite's writers lock the database)."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite locks the database, not rows: its writers wait the busy timeout")
    return ConsentLifecycleService(
        world.uow,  # type: ignore[arg-type]
        world.clock,
        world.consent,
        ConsentEffects(world.clock, None),
        timedelta(days=7),
        lock_timeout=lock_timeout,
    )


@asynccontextmanager
async def held(database_url: str, *external_ids: str) -> AsyncIterator[asyncpg.Connection]:
    """These subjects' rows locked as an import locks them, until the block ends (or `ROLLBACK`)."""
    holder = await asyncpg.connect(databases.asyncpg_dsn(database_url))
    try:
        await holder.execute("BEGIN")
        await holder.execute(
            "SELECT 1 FROM subject WHERE external_id = ANY($1::text[]) FOR NO KEY UPDATE", list(external_ids)
        )
        yield holder
    finally:
        await holder.close()


async def test_a_reconfirmation_click_waits_no_longer_than_the_lock_timeout(
    world: World, database_url: str
) -> None:
    lifecycle = impatient(world, database_url)
    await grant(world, "r-1", "newsletter")
    async with held(database_url, "r-1") as holder:
        with pytest.raises(HeldTooLong):
            await asyncio.wait_for(lifecycle.reconfirm("r-1", "newsletter"), 30)
        await holder.execute("ROLLBACK")
        assert await lifecycle.reconfirm("r-1", "newsletter") == 1  # once the import has ended


async def test_a_gpc_signal_waits_only_a_moment_for_a_held_subject(world: World, database_url: str) -> None:
    lifecycle = impatient(world, database_url, lock_timeout=60)  # a click would wait a minute; not this
    await grant(world, "g-1", "ad_sharing")
    async with held(database_url, "g-1") as holder:
        with pytest.raises(HeldTooLong):  # the middleware logs it and a later request records it
            await asyncio.wait_for(lifecycle.record_gpc("g-1"), 10)
        await holder.execute("ROLLBACK")
        assert await lifecycle.record_gpc("g-1") == 1
    decisions = await world.consent.check(STAFF, "ad_sharing", ["g-1"])
    assert decisions[0].reason is ConsentReason.GPC_OPT_OUT


async def test_the_sweep_leaves_a_held_subject_to_its_next_run_and_expires_the_others(
    world: World, database_url: str
) -> None:
    lifecycle = impatient(world, database_url, lock_timeout=60)  # the sweep waits a moment, not this
    for who in ("x-1", "x-2", "x-3"):
        await grant(world, who, "newsletter")
    world.clock.now = T0 + timedelta(days=37)
    async with held(database_url, "x-2") as holder:
        run = await asyncio.wait_for(lifecycle.expire_due(), 10)
        assert (run.subjects, run.expired, run.held) == (2, 2, 1)
        await holder.execute("ROLLBACK")
    run = await lifecycle.expire_due()
    assert (run.subjects, run.expired, run.held) == (1, 1, 0)
    page = await world.consent.events(STAFF, "x-2", None, 10, None)
    assert page.entries[0][1].event.action is ConsentAction.EXPIRE
