"""setConsents, withdrawConsent and the subject's preferences end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.app import GraphQLClient, admin_token, agent_token, client_token, subject_token
from tests.support.consent_factories import (
    EVENTS,
    MY_CONSENTS,
    check,
    choice,
    seed_catalogue,
    set_consents,
    withdraw,
)
from tests.support.factories import create_purpose, publish_notice


@pytest.fixture
async def catalogue(gql: GraphQLClient) -> GraphQLClient:
    await seed_catalogue(gql)
    return gql


def by_scope(consents: list[dict[str, object]]) -> dict[tuple[object, object, object], dict[str, object]]:
    return {(c["purpose"], c["topic"], c["channel"]): c for c in consents}


async def test_a_subject_grants_and_reads_its_preferences(catalogue: GraphQLClient) -> None:
    gql = catalogue
    before = by_scope((await gql(MY_CONSENTS, token=subject_token()))["me"]["consents"])
    assert before[("marketing_email", None, None)]["reason"] == "NOT_GIVEN"
    assert before[("marketing_email", None, None)]["state"] == "NO_CHOICE"
    assert before[("analytics", None, None)]["allowed"] is True
    assert before[("essential", None, None)]["reason"] == "NOT_REQUIRED"

    result = await set_consents(
        gql,
        choice(),
        choice(topic="promotions", granted=False),
        choice("analytics", granted=False),
        origin={"appId": "web", "url": "https://shop.example/prefs", "ip": "203.0.113.77"},
    )
    assert result["__typename"] == "SetConsentsSuccess", result
    assert [e["action"] for e in result["events"]] == ["GRANT", "WITHDRAW", "OBJECT"]
    event = result["events"][0]
    assert event["origin"]["ip"] == "203.0.113.0/24"
    assert event["actor"] == {"kind": "SUBJECT", "id": "customer-1"}
    assert event["method"] == "CHECKBOX"
    assert event["noticeVersion"] == 1

    after = by_scope((await gql(MY_CONSENTS, token=subject_token()))["me"]["consents"])
    wide = after[("marketing_email", None, None)]
    assert (wide["state"], wide["allowed"], wide["reason"], wide["noticeVersion"]) == (
        "GRANTED",
        True,
        "GRANTED",
        1,
    )
    assert after[("marketing_email", "promotions", None)]["reason"] == "WITHDRAWN"
    assert after[("analytics", None, None)]["state"] == "OBJECTED"
    assert after[("analytics", None, None)]["allowed"] is False


@pytest.mark.parametrize(
    ("choices", "extra", "field"),
    [
        ([choice("nope")], {}, "choices.0.purpose"),
        ([choice("analytics", False), choice(topic="nope")], {}, "choices.1.topic"),
        ([choice(channel="PUSH")], {}, "choices.0.channel"),
        ([choice(preSelected=True)], {}, "choices.0.preSelected"),
        ([choice("essential")], {}, "choices.0.purpose"),
        ([choice()], {"noticeVersion": None}, "choices.0.granted"),
        ([choice()], {"noticeVersion": 7}, "noticeVersion"),
        ([choice()], {"method": "UNSUBSCRIBE_LINK"}, "choices.0.granted"),
        ([choice()], {"method": "IMPORT"}, "method"),
        ([choice()], {"origin": {"ip": "nonsense"}}, "origin.ip"),
    ],
)
async def test_refused_calls_name_the_choice_and_record_nothing(
    catalogue: GraphQLClient, choices: list[dict[str, object]], extra: dict[str, object], field: str
) -> None:
    # Where a valid choice comes first, the whole call is refused: it is not recorded either.
    result = await set_consents(catalogue, *choices, **extra)
    assert result["__typename"] == "ValidationError", result
    assert field in [f["field"] for f in result["fields"]]
    events = await catalogue(EVENTS, token=subject_token())
    assert events["consentEvents"]["edges"] == []


async def test_notice_that_does_not_state_the_purpose_is_refused(catalogue: GraphQLClient) -> None:
    await create_purpose(catalogue, key="sms_offers", title="SMS offers", channels=["SMS"], topics=[])
    result = await set_consents(catalogue, choice("sms_offers"))
    assert result["__typename"] == "ValidationError"
    assert result["fields"][0]["field"] == "choices.0.purpose"
    assert "does not state 'sms_offers'" in result["fields"][0]["message"]


async def test_material_change_reads_as_needs_reconsent_until_granted_again(catalogue: GraphQLClient) -> None:
    gql = catalogue
    reader = client_token("consent:read")
    await set_consents(gql, choice())
    assert [d["reason"] for d in await check(gql, ["customer-1"], reader)] == ["GRANTED"]
    await publish_notice(gql, ["marketing_email", "analytics", "essential"], material=("marketing_email",))
    mine = by_scope((await gql(MY_CONSENTS, token=subject_token()))["me"]["consents"])
    assert mine[("marketing_email", None, None)]["reason"] == "NEEDS_RECONSENT"
    # The check reads the purpose's new material version (not a purpose cached before the change).
    assert [d["reason"] for d in await check(gql, ["customer-1"], reader)] == ["NEEDS_RECONSENT"]
    await set_consents(gql, choice(), noticeVersion=2)
    mine = by_scope((await gql(MY_CONSENTS, token=subject_token()))["me"]["consents"])
    assert mine[("marketing_email", None, None)]["reason"] == "GRANTED"
    assert [d["reason"] for d in await check(gql, ["customer-1"], reader)] == ["GRANTED"]


@pytest.mark.parametrize(
    ("token", "subject", "expected", "actor", "method"),
    [
        (subject_token("customer-1"), "customer-1", "SetConsentsSuccess", "SUBJECT", "CHECKBOX"),
        (subject_token("customer-2"), "customer-1", "PermissionDeniedError", None, None),
        (agent_token(), "customer-1", "SetConsentsSuccess", "AGENT", "AGENT"),
        (admin_token(), "customer-9", "SetConsentsSuccess", "AGENT", "AGENT"),
        (client_token("consent:write"), "customer-1", "SetConsentsSuccess", "API_CLIENT", "CHECKBOX"),
        (client_token("consent:read"), "customer-1", "PermissionDeniedError", None, None),
        (None, "customer-1", "PermissionDeniedError", None, None),
    ],
)
async def test_who_may_set_consents(
    catalogue: GraphQLClient,
    token: str | None,
    subject: str,
    expected: str,
    actor: str | None,
    method: str | None,
) -> None:
    extra = {"method": None} if actor == "AGENT" else {}
    data = await catalogue(
        """mutation($input: SetConsentsInput!) { setConsents(input: $input) {
             __typename ... on SetConsentsSuccess { events { actor { kind } method } } } }""",
        {
            "input": {
                "subjectId": subject,
                "choices": [choice()],
                "noticeVersion": 1,
                "method": "CHECKBOX",
                **extra,
            }
        },
        token=token,
    )
    result = data["setConsents"]
    assert result["__typename"] == expected
    if actor:
        assert result["events"][0] == {"actor": {"kind": actor}, "method": method}


async def test_idempotency_key_records_nothing_twice(catalogue: GraphQLClient) -> None:
    first = await set_consents(catalogue, choice(), choice("analytics", False), idempotencyKey="k-1")
    again = await set_consents(catalogue, choice(), choice("analytics", False), idempotencyKey="k-1")
    assert again["replayed"] is True
    assert first["replayed"] is False
    assert [e["id"] for e in again["events"]] == [e["id"] for e in first["events"]]
    history = await catalogue(EVENTS, token=subject_token())
    assert len(history["consentEvents"]["edges"]) == 2
    other = await set_consents(catalogue, choice(granted=False), idempotencyKey="k-1")
    assert other["__typename"] == "ValidationError"
    assert other["fields"][0]["field"] == "idempotencyKey"
    # The key is per subject: another subject's call with the same key is its own.
    theirs = await set_consents(catalogue, choice(), idempotencyKey="k-1", token=subject_token("customer-2"))
    assert theirs["replayed"] is False


async def test_withdraw_a_topic_a_purpose_and_everything(catalogue: GraphQLClient) -> None:
    gql = catalogue
    await set_consents(gql, choice(), choice(topic="promotions"), choice(channel="SMS"))

    topic = await withdraw(gql, purpose="marketing_email", topic="promotions")
    assert [(e["topic"], e["action"]) for e in topic["events"]] == [("promotions", "WITHDRAW")]
    mine = by_scope(topic["consents"])
    assert mine[("marketing_email", "promotions", None)]["allowed"] is False
    assert mine[("marketing_email", None, None)]["allowed"] is True

    # A purpose-wide withdrawal also withdraws the remaining specific grants (SMS).
    purpose = await withdraw(gql, purpose="marketing_email")
    assert [(e["topic"], e["channel"]) for e in purpose["events"]] == [(None, None), (None, "SMS")]
    assert all(not c["allowed"] for c in purpose["consents"] if c["purpose"] == "marketing_email")

    everything = await withdraw(gql)
    assert {(e["purpose"], e["action"]) for e in everything["events"]} == {
        ("marketing_email", "WITHDRAW"),
        ("analytics", "OBJECT"),
    }
    assert [c["purpose"] for c in everything["consents"] if c["allowed"]] == ["essential"]


async def test_a_withdrawal_key_replays_the_same_call_and_refuses_another(catalogue: GraphQLClient) -> None:
    gql = catalogue
    await set_consents(gql, choice(), choice(topic="promotions"), idempotencyKey="grant-1")
    first = await withdraw(gql, purpose="marketing_email", topic="promotions", idempotencyKey="w-1")
    again = await withdraw(gql, purpose="marketing_email", topic="promotions", idempotencyKey="w-1")
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert [e["id"] for e in again["events"]] == [e["id"] for e in first["events"]]
    # The same key for the whole purpose, or a setConsents key for a withdrawal: refused, nothing recorded.
    for key, fields in (("w-1", {"purpose": "marketing_email"}), ("grant-1", {})):
        refused = await withdraw(gql, idempotencyKey=key, **fields)
        assert refused["__typename"] == "ValidationError"
        assert refused["fields"][0]["field"] == "idempotencyKey"
    history = await gql(EVENTS, token=subject_token())
    assert len(history["consentEvents"]["edges"]) == 3


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"topic": "promotions"}, "purpose"),
        ({"purpose": "nope"}, "purpose"),
        ({"purpose": "essential"}, "purpose"),
        ({"purpose": "marketing_email", "topic": "nope"}, "topic"),
        ({"purpose": "marketing_email", "method": "GPC"}, "method"),
    ],
)
async def test_refused_withdrawals(catalogue: GraphQLClient, fields: dict[str, str], field: str) -> None:
    result = await withdraw(catalogue, **fields)
    assert result["__typename"] == "ValidationError"
    assert result["fields"][0]["field"] == field


async def test_subject_field_for_staff_batches_subjects(catalogue: GraphQLClient) -> None:
    await set_consents(catalogue, choice(), token=subject_token("a"))
    data = await catalogue(
        """{ a: subject(externalId: "a") { consents { purpose reason } }
             b: subject(externalId: "b") { consents { purpose reason } } }""",
        token=agent_token(),
    )
    assert data["a"]["consents"][2] == {"purpose": "marketing_email", "reason": "GRANTED"}
    assert data["b"]["consents"][2] == {"purpose": "marketing_email", "reason": "NOT_GIVEN"}


async def test_a_purpose_changed_after_a_write_is_read_as_changed_by_the_next(
    catalogue: GraphQLClient,
) -> None:
    gql = catalogue
    refused = await set_consents(gql, choice(topic="events"))
    assert refused["__typename"] == "ValidationError"  # no such topic yet
    topics = [
        {"key": "product_updates", "title": "Product updates"},
        {"key": "promotions", "title": "Promotions"},
        {"key": "events", "title": "Events"},
    ]
    updated = await create_purpose(gql, topics=topics, channels=["EMAIL", "SMS"], expectedVersion=1)
    assert updated["version"] == 2
    granted = await set_consents(gql, choice(topic="events"))
    assert granted["__typename"] == "SetConsentsSuccess", granted
