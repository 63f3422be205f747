"""consentCheck and consentEvents end to end: order, reasons, limits, permissions, one round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.support.app import GraphQLClient, agent_token, client_token, subject_token
from tests.support.consent_factories import CHECK, EVENTS, check, choice, seed_catalogue, set_consents

READER = client_token("consent:read")


@pytest.fixture
async def catalogue(gql: GraphQLClient) -> GraphQLClient:
    await seed_catalogue(gql)
    return gql


async def test_one_decision_per_id_in_the_order_given(catalogue: GraphQLClient) -> None:
    gql = catalogue
    await set_consents(gql, choice(), token=subject_token("yes"))
    await set_consents(gql, choice(granted=False), token=subject_token("no"))
    await set_consents(gql, choice(topic="promotions", granted=False), token=subject_token("yes-but"))
    await set_consents(gql, choice("analytics", False), token=subject_token("no"))
    ids = ["no", "unknown", "yes", "yes", "yes-but"]
    decisions = await check(gql, ids, READER)
    assert [(d["subjectId"], d["allowed"], d["reason"]) for d in decisions] == [
        ("no", False, "WITHDRAWN"),
        ("unknown", False, "NOT_GIVEN"),
        ("yes", True, "GRANTED"),
        ("yes", True, "GRANTED"),
        ("yes-but", False, "NOT_GIVEN"),
    ]
    # The topic-specific "no" overrides nothing for the whole purpose, and applies to its topic.
    promotions = await check(gql, ["yes", "yes-but"], READER, topic="promotions")
    assert [d["reason"] for d in promotions] == ["GRANTED", "WITHDRAWN"]
    # Opt-out purposes are in effect for unknown subjects; notice-only ones need nothing.
    analytics = await check(gql, ["no", "unknown"], READER, purpose="analytics")
    assert [(d["allowed"], d["reason"]) for d in analytics] == [(False, "WITHDRAWN"), (True, "NOT_REQUIRED")]
    essential = await check(gql, ["no"], READER, purpose="essential")
    assert essential[0]["reason"] == "NOT_REQUIRED"
    assert await check(gql, [], READER) == []


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"purpose": "nope", "ids": ["a"]}, "No purpose with key 'nope'"),
        ({"purpose": "marketing_email", "ids": ["a"], "topic": "nope"}, "has no topic 'nope'"),
        ({"purpose": "marketing_email", "ids": ["a"], "channel": "PUSH"}, "does not cover channel PUSH"),
        ({"purpose": "marketing_email", "ids": [f"s{i}" for i in range(10_001)]}, "at most 10,000 ids"),
    ],
)
async def test_check_errors_are_clear(
    catalogue: GraphQLClient, variables: dict[str, Any], words: str
) -> None:
    body = (await catalogue.post(CHECK, variables, token=READER)).json()
    assert words in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("token", "allowed"),
    [
        (READER, True),
        (agent_token(), True),
        (client_token("consent:write"), False),
        (subject_token(), False),
        (None, False),
    ],
)
async def test_who_may_check(catalogue: GraphQLClient, token: str | None, allowed: bool) -> None:
    body = (await catalogue.post(CHECK, {"purpose": "marketing_email", "ids": ["a"]}, token=token)).json()
    assert ("errors" not in body) is allowed, body


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement sent while the test runs: through any SQLAlchemy engine, and through asyncpg
    directly (the PostgreSQL hot path, db/hot_reads.py) with or without arguments."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        # The access log's background batch insert (docs/audit.md) runs on its own schedule.
        if "personal_data_access" not in args[2]:
            seen.append(args[2])

    def counting(method: Any) -> Any:
        async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            seen.append(query)
            return await method(self, query, *args, **kwargs)

        return counted

    monkeypatch.setattr(asyncpg.Connection, "execute", counting(asyncpg.Connection.execute))
    monkeypatch.setattr(asyncpg.Connection, "_execute", counting(asyncpg.Connection._execute))
    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("count", [1, 3, 2_000, 10_000])
async def test_a_check_is_one_statement_whatever_the_count(
    catalogue: GraphQLClient, statements: list[str], count: int
) -> None:
    gql = catalogue
    await set_consents(gql, choice(), token=subject_token("s1"))
    ids = [f"s{i}" for i in range(count)]
    await check(gql, ids[:2], READER)  # warm the pool (connection set-up is not the query)
    statements.clear()
    decisions = await check(gql, ids, READER, topic="promotions", channel="EMAIL")
    assert len(decisions) == count
    assert decisions[min(1, count - 1)]["allowed"] is (count > 1)
    assert len(statements) == 1, statements
    assert "consent_state" in statements[0]
    assert "purpose" in statements[0]


async def test_history_pages_newest_first(catalogue: GraphQLClient) -> None:
    gql = catalogue
    for granted in (True, False, True):
        await set_consents(gql, choice(granted=granted))
    await set_consents(gql, choice(), token=subject_token("other"))
    first = (await gql(EVENTS, {"first": 2}, token=subject_token()))["consentEvents"]
    assert [e["node"]["action"] for e in first["edges"]] == ["GRANT", "WITHDRAW"]
    assert {e["node"]["subjectId"] for e in first["edges"]} == {"customer-1"}
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await gql(EVENTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}, token=subject_token())
    assert [e["node"]["action"] for e in rest["consentEvents"]["edges"]] == ["GRANT"]
    assert rest["consentEvents"]["pageInfo"]["hasNextPage"] is False
    everyone = (await gql(EVENTS, token=agent_token()))["consentEvents"]["edges"]
    assert len(everyone) == 4


async def poll_feed(
    gql: GraphQLClient, cursor: str, want: int, first: int = 2
) -> tuple[list[dict[str, Any]], str]:
    """Poll like a mirroring client: the feed may hold events back while any writer on the server is
    still open (it never skips them), so keep polling from the last cursor until `want` arrive."""
    nodes: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(nodes) < want and asyncio.get_running_loop().time() < deadline:
        page = (await gql(EVENTS, {"since": cursor, "first": first}, token=READER))["consentEvents"]
        nodes.extend(e["node"] for e in page["edges"])
        cursor = page["pageInfo"]["endCursor"]
        if not page["edges"]:
            await asyncio.sleep(0.05)
    return nodes, cursor


async def test_changes_feed_resumes_without_gaps_or_repeats(catalogue: GraphQLClient) -> None:
    gql = catalogue
    for i in range(5):
        await set_consents(gql, choice(granted=i % 2 == 0), token=subject_token(f"s{i}"))
    nodes, cursor = await poll_feed(gql, "", want=5)
    seen = [n["id"] for n in nodes]
    assert len(seen) == 5
    assert seen == sorted(seen, key=int)
    await set_consents(gql, choice(), token=subject_token("late"))
    late, cursor = await poll_feed(gql, cursor, want=1, first=100)
    assert [n["subjectId"] for n in late] == ["late"]
    # Polling again with the new end cursor finds nothing, and keeps the position.
    again = (await gql(EVENTS, {"since": cursor}, token=READER))["consentEvents"]
    assert again["edges"] == []
    assert again["pageInfo"]["endCursor"] == cursor


@pytest.mark.parametrize(
    ("token", "variables", "allowed"),
    [
        (subject_token("customer-1"), {}, True),
        (subject_token("customer-1"), {"subjectId": "customer-1"}, True),
        (subject_token("customer-1"), {"subjectId": "customer-2"}, False),
        (subject_token("customer-1"), {"since": ""}, True),
        (READER, {"since": ""}, True),
        (client_token("consent:write"), {}, False),
        (agent_token(), {"subjectId": "customer-2"}, True),
        (None, {}, False),
    ],
)
async def test_who_may_read_events(
    catalogue: GraphQLClient, token: str | None, variables: dict[str, Any], allowed: bool
) -> None:
    body = (await catalogue.post(EVENTS, variables, token=token)).json()
    assert ("errors" not in body) is allowed, body


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"after": "garbage"}, "after"),
        ({"since": "garbage"}, "since"),
        ({"since": "", "after": "x"}, "after"),
        ({"first": 0}, "first"),
        ({"first": 1001}, "first"),
    ],
)
async def test_bad_cursors_are_refused(
    catalogue: GraphQLClient, variables: dict[str, Any], field: str
) -> None:
    body = (await catalogue.post(EVENTS, variables, token=READER)).json()
    assert body["errors"][0]["extensions"]["fields"][0]["field"] == field
