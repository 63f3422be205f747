"""The ledger's follower end to end, on SQLite and PostgreSQL: every consent change gets its receipt and
its "permission changed" message once, after it commits, whatever the page size and however many
followers run at once."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from sqlalchemy import text

from dsr_gateway.app import build_composer, controller_from, signer_from, utc_now
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.consent_followups import ConsentFollowUps
from dsr_gateway.services.consent_receipts import ConsentReceipts
from dsr_gateway.services.receipts import ReceiptService
from tests.support.app import GraphQLClient, agent_token, client_token, make_settings, subject_token
from tests.support.comms_flow_factories import OUTBOX_ALL
from tests.support.consent_factories import choice, seed_catalogue, set_consents, withdraw
from tests.support.followups import follow_up

RECEIPTS = "query($s: String!) { subject(externalId: $s) { consentReceipts { jws } } }"


def claims(jws: str) -> dict[str, Any]:
    payload = jws.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def receipts_of(gql: GraphQLClient, external_id: str) -> list[dict[str, Any]]:
    data = await gql(RECEIPTS, {"s": external_id}, token=agent_token())
    return [claims(r["jws"]) for r in data["subject"]["consentReceipts"]]


async def permission_messages(gql: GraphQLClient) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (await gql(OUTBOX_ALL, token=agent_token()))["outboxMessages"]
    return [m for m in messages if m["kind"] == "PERMISSION_CHANGED"]


def follower(database_url: str, page: int) -> tuple[ConsentFollowUps, Any]:
    settings = make_settings(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(factory)

    receipts = ReceiptService(uow, signer_from(settings), controller_from(settings), utc_now)
    followups = ConsentFollowUps(
        uow,
        utc_now,
        ConsentReceipts(receipts, settings.receipt_jurisdiction),
        ConsentEffects(utc_now, build_composer(settings)),
        page=page,
    )
    return followups, engine


async def test_a_change_by_someone_else_gets_a_receipt_and_a_message_once(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    api = client_token("consent:write consent:read")
    changed = await set_consents(gql, choice(), token=api, subjectId="f-1", method="API")
    mine = await set_consents(gql, choice("analytics", False), token=subject_token("f-1"))
    # Nothing follows until the follower runs: the write itself carried only events, state and webhook.
    assert await receipts_of(gql, "f-1") == []
    assert await permission_messages(gql) == []

    run = await follow_up(database_url)
    assert (run.events, run.receipts, run.messages) == (2, 2, 1)
    assert (await follow_up(database_url)).events == 0
    receipts = await receipts_of(gql, "f-1")
    assert sorted(r["event"]["ledger"]["eventIds"] for r in receipts) == sorted(
        [[e["id"] for e in changed["events"]], [e["id"] for e in mine["events"]]]
    )
    # Only the API client's change is announced to the subject (the subject's own choice is not).
    (message,) = await permission_messages(gql)
    assert "Marketing" in message["body"] or "marketing" in message["body"].lower()


async def test_small_pages_never_split_or_repeat_a_call(gql: GraphQLClient, database_url: str) -> None:
    await seed_catalogue(gql)
    calls = []
    for n in range(4):  # two events per call, pages of three events
        who = subject_token(f"p-{n}")
        calls.append(await set_consents(gql, choice(), choice(topic="promotions"), token=who))
    calls.append(await withdraw(gql, token=subject_token("p-0"), purpose="marketing_email"))
    followups, engine = follower(database_url, page=3)
    try:
        run = await followups.run_until_idle()
    finally:
        await engine.dispose()
    assert (run.events, run.receipts) == (10, 5)
    found = [r["event"]["ledger"]["eventIds"] for n in range(4) for r in await receipts_of(gql, f"p-{n}")]
    assert sorted(found) == sorted([e["id"] for e in c["events"]] for c in calls)


async def test_followers_running_at_once_issue_each_receipt_once(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    for n in range(12):
        await set_consents(gql, choice(), token=subject_token(f"c-{n}"))
    pairs = [follower(database_url, page=2) for _ in range(3)]
    try:
        runs = await asyncio.gather(*(f.run_until_idle() for f, _ in pairs))
    finally:
        for _, engine in pairs:
            await engine.dispose()
    assert sum(r.receipts for r in runs) == 12
    assert sum(r.events for r in runs) == 12
    for n in range(12):
        assert len(await receipts_of(gql, f"c-{n}")) == 1


class BrokenAnnouncements(ConsentEffects):
    """A message that cannot be rendered (say, a broken template override)."""

    async def announce(self, *args: Any, **kwargs: Any) -> int:
        raise RuntimeError("template error")


async def test_messages_that_fail_do_not_hold_back_the_receipts(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    api = client_token("consent:write consent:read")
    await set_consents(gql, choice(), token=api, subjectId="b-1", method="API")
    settings = make_settings(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(factory)

    receipts = ConsentReceipts(
        ReceiptService(uow, signer_from(settings), controller_from(settings), utc_now),
        settings.receipt_jurisdiction,
    )
    try:
        broken = ConsentFollowUps(uow, utc_now, receipts, BrokenAnnouncements(utc_now, None))
        with pytest.raises(RuntimeError, match="template error"):
            await broken.run_until_idle()
        assert len(await receipts_of(gql, "b-1")) == 1  # the receipt went ahead
        assert await permission_messages(gql) == []
        # Once messages can be made again, they catch up from where they stopped; no second receipt.
        run = await follow_up(database_url)
        assert (run.receipts, run.messages) == (0, 1)
    finally:
        await engine.dispose()
    assert len(await receipts_of(gql, "b-1")) == 1


async def test_a_follower_without_a_position_starts_at_the_end_of_the_ledger(
    gql: GraphQLClient, database_url: str
) -> None:
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("s-1"))
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:  # say, a row deleted by hand
            await connection.execute(text("DELETE FROM consent_followup WHERE name = 'receipts'"))
    finally:
        await engine.dispose()
    assert (await follow_up(database_url)).receipts == 0  # not a receipt for every change ever made
    await set_consents(gql, choice(), token=subject_token("s-2"))
    assert (await follow_up(database_url)).receipts == 1
    assert len(await receipts_of(gql, "s-2")) == 1
