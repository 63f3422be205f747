"""Concurrent small consentChecks share one statement on PostgreSQL; each still gets its own answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.services.consent import ConsentService
from tests.support.accountability_factories import Live
from tests.support.app import subject_token
from tests.support.consent_factories import choice, seed_catalogue, set_consents

pytest_plugins = ["tests.support.accountability_factories"]
READER = Principal(PrincipalKind.API_CLIENT, id="shop", scopes=frozenset({"consent:read"}))


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    original = asyncpg.Connection._execute

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "_execute", counted)
    return seen


async def seeded(live: Live) -> ConsentService:
    await seed_catalogue(live.gql)
    await set_consents(live.gql, choice(), token=subject_token("yes"))
    await set_consents(live.gql, choice(granted=False), token=subject_token("no"))
    consent: ConsentService = live.state["services"].consent
    return consent


async def test_concurrent_checks_get_their_own_answers(
    live: Live, statements: list[str], database_url: str
) -> None:
    consent = await seeded(live)
    asks = [["yes"], ["no"], ["unknown"], ["no", "yes"], ["yes", "yes"]] * 4
    statements.clear()
    answers = await asyncio.gather(*(consent.check(READER, "marketing_email", ids) for ids in asks))
    for ids, decisions in zip(asks, answers, strict=True):
        assert [d.allowed for d in decisions] == [i == "yes" for i in ids]
    if database_url.startswith("postgresql"):
        # One pool checkout and one round trip for all twenty calls (they arrived in the same turn).
        assert len([s for s in statements if "consent_state" in s]) == 1


async def test_checks_of_different_purposes_or_scopes_are_not_mixed(live: Live) -> None:
    consent = await seeded(live)
    email, analytics, topic, missing = await asyncio.gather(
        consent.check(READER, "marketing_email", ["yes", "no"]),
        consent.check(READER, "analytics", ["yes", "no"]),
        consent.check(READER, "marketing_email", ["yes"], topic="promotions"),
        consent.check(READER, "no_such_purpose", ["yes"]),
        return_exceptions=True,
    )
    assert [d.allowed for d in email] == [True, False]  # type: ignore[union-attr]
    assert [d.reason.value for d in analytics] == ["NOT_REQUIRED", "NOT_REQUIRED"]  # type: ignore[union-attr]
    assert [d.allowed for d in topic] == [True]  # type: ignore[union-attr]
    assert type(missing).__name__ == "NotFound"


async def test_a_failed_statement_reaches_every_caller_of_the_batch(live: Live, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("checks are coalesced on PostgreSQL only (SQLite runs each on its own)")
    consent = await seeded(live)
    await live.state["hot_reads"].aclose()  # the pool is gone: the shared statement fails
    results = await asyncio.gather(
        *(consent.check(READER, "marketing_email", [i]) for i in ("yes", "no", "x")),
        return_exceptions=True,
    )
    assert [str(r) for r in results] == ["the consentCheck pool is closed (the app is stopping)"] * 3
