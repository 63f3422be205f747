"""Review findings: bad input that reached a masked 500 instead of a clear, typed error."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.e2e.test_http import client_for
from tests.support.app import GraphQLClient, admin_token, agent_token
from tests.support.factories import create_purpose
from tests.support.request_factories import OUTBOX, SUBMIT, create_request

MASKED = "Unexpected error"
TOO_BIG = "9" * 30  # digits, but beyond any 64-bit id column
SUPERSCRIPT = "\u00b2"  # str.isdigit() says yes, int() says no


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


NAIVE = "2030-01-01T00:00:00"
QUEUE_CURSOR = _b64(json.dumps([NAIVE, NAIVE, "x"]))

BAD_INPUTS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "queue dueBefore without a time zone",
        "query($f: PrivacyRequestFilter) { privacyRequests(filter: $f) { edges { cursor } } }",
        {"f": {"dueBefore": NAIVE}},
        "dueBefore",
    ),
    (
        "queue dueBefore in the year 9999 west of UTC",
        "query($f: PrivacyRequestFilter) { privacyRequests(filter: $f) { edges { cursor } } }",
        {"f": {"dueBefore": "9999-12-31T23:00:00-05:00"}},
        "dueBefore",
    ),
    (
        "complianceReport from the year 1",
        'query { complianceReport(from: "0001-01-01T00:00:00+01:00", to: "0001-02-01T00:00:00Z") '
        "{ generatedAt } }",
        {},
        "from",
    ),
    (
        "complianceReport to the year 9999",
        'query { complianceReport(from: "8999-12-01T00:00:00Z", to: "9999-12-31T23:00:00-05:00") '
        "{ generatedAt } }",
        {},
        "to",
    ),
    (
        "queue cursor with naive datetimes",
        "query($a: String) { privacyRequests(after: $a) { edges { cursor } } }",
        {"a": QUEUE_CURSOR},
        "after",
    ),
    (
        "webhookDeliveries id beyond 64 bits",
        "query($i: ID!) { webhookDeliveries(subscriptionId: $i) { edges { cursor } } }",
        {"i": TOO_BIG},
        "",
    ),
    (
        "webhookDeliveries id of superscript digits",
        "query($i: ID!) { webhookDeliveries(subscriptionId: $i) { edges { cursor } } }",
        {"i": SUPERSCRIPT},
        "",
    ),
    (
        "webhookDeliveries cursor beyond 64 bits",
        'query($a: String) { webhookDeliveries(subscriptionId: "1", after: $a) { edges { cursor } } }',
        {"a": _b64("webhook-delivery:" + TOO_BIG)},
        "after",
    ),
    (
        "deleteWebhookSubscription id beyond 64 bits",
        "mutation($i: ID!) { deleteWebhookSubscription(id: $i) { __typename ... on UserError { message } } }",
        {"i": TOO_BIG},
        "No webhook subscription",
    ),
    (
        "deleteWebhookSubscription id of superscript digits",
        "mutation($i: ID!) { deleteWebhookSubscription(id: $i) { __typename ... on UserError { message } } }",
        {"i": SUPERSCRIPT},
        "No webhook subscription",
    ),
    (
        "redeliverWebhook id beyond 64 bits",
        "mutation($i: ID!) { redeliverWebhook(deliveryId: $i) { __typename ... on UserError { message } } }",
        {"i": TOO_BIG},
        "No webhook delivery",
    ),
    (
        "auditTrail cursor beyond 64 bits",
        'query($a: String) { auditTrail(subjectId: "a", after: $a) { edges { cursor } } }',
        {"a": _b64("trail:" + TOO_BIG)},
        "after",
    ),
    (
        "personalDataAccesses cursor beyond 64 bits",
        'query($a: String) { personalDataAccesses(subjectId: "a", after: $a) { edges { cursor } } }',
        {"a": _b64("trail:" + TOO_BIG)},
        "after",
    ),
    (
        "consentEvents history cursor beyond 64 bits",
        "query($a: String) { consentEvents(after: $a) { edges { cursor } } }",
        {"a": _b64("h:" + TOO_BIG)},
        "after",
    ),
    (
        "consentEvents feed cursor beyond 64 bits",
        "query($s: String) { consentEvents(since: $s) { edges { cursor } } }",
        {"s": _b64(f"f:{TOO_BIG}:{TOO_BIG}")},
        "since",
    ),
]


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [pytest.param(q, v, e, id=name) for name, q, v, e in BAD_INPUTS],
)
async def test_bad_input_gets_a_clear_error_not_a_masked_500(
    gql: GraphQLClient, query: str, variables: dict[str, Any], expected: str
) -> None:
    response = await gql.post(query, variables, token=admin_token())
    assert response.status_code == 200
    text = response.text
    assert MASKED not in text, text
    assert expected in text, text


async def test_agents_get_the_same_clear_error_for_an_out_of_range_delivery_id(gql: GraphQLClient) -> None:
    response = await gql.post(
        "query($i: ID!) { webhookDeliveries(subscriptionId: $i) { edges { cursor } } }",
        {"i": TOO_BIG},
        token=agent_token(),
    )
    assert MASKED not in response.text, response.text


@pytest.mark.parametrize("expiry", [SUPERSCRIPT, TOO_BIG * 10])
async def test_a_forged_export_link_with_odd_digits_is_refused_not_a_500(
    gql: GraphQLClient, expiry: str
) -> None:
    response = await gql.http.get(f"/exports/{'a' * 32}.{expiry}.signature")
    assert response.status_code == 403, response.text


DUE = """
query($d: DateTime!, $a: String) {
  consentsDueForReview(purpose: "newsletter", dueBefore: $d, after: $a) { edges { cursor } }
}
"""


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param({"d": NAIVE}, "dueBefore", id="dueBefore without a time zone"),
        pytest.param({"d": "0001-01-01T00:00:00+05:00"}, "dueBefore", id="dueBefore in the year 1"),
        pytest.param({"d": "9999-12-31T23:59:59-05:00"}, "dueBefore", id="dueBefore in the year 9999"),
        pytest.param(
            {"d": NAIVE + "Z", "a": _b64(json.dumps([NAIVE + "Z", int(TOO_BIG), "t", "c"]))},
            "after",
            id="cursor with a subject id beyond 64 bits",
        ),
        pytest.param(
            {"d": NAIVE + "Z", "a": _b64(json.dumps([NAIVE, 1, "t", "c"]))},
            "after",
            id="cursor with a naive datetime",
        ),
    ],
)
async def test_consents_due_for_review_refuses_bad_dates_and_cursors_clearly(
    gql: GraphQLClient, variables: dict[str, Any], expected: str
) -> None:
    await create_purpose(gql, key="newsletter")
    response = await gql.post(DUE, variables, token=agent_token())
    assert MASKED not in response.text, response.text
    assert expected in response.text, response.text


QUEUE_WITH_NESTED = """
query {
  privacyRequests(first: 50) {
    edges { node { id exportPackage { url } subject { externalId consentReceipts { receiptId } } } }
  }
}
"""


@pytest.fixture
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        # The access log's background batch insert runs on its own schedule.
        if "personal_data_access" not in args[2]:
            seen.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


async def _queue_statements(gql: GraphQLClient, statements: list[str]) -> int:
    await gql(QUEUE_WITH_NESTED, token=agent_token())  # warm the pool
    statements.clear()
    await gql(QUEUE_WITH_NESTED, token=agent_token())
    return len(statements)


async def test_the_queue_reads_export_packages_and_receipts_in_batches_not_per_row(
    gql: GraphQLClient, statements: list[str]
) -> None:
    for n in range(2):
        await create_request(gql, subject=f"s-{n}")
    with_two = await _queue_statements(gql, statements)
    for n in range(2, 6):
        await create_request(gql, subject=f"s-{n}")
    with_six = await _queue_statements(gql, statements)
    assert with_six == with_two, statements


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("query($i: ID!) { privacyRequest(id: $i) { id } }", {"i": "a\u0000b"}, id="variable"),
        pytest.param(
            "query($f: PrivacyRequestFilter) { privacyRequests(filter: $f) { edges { cursor } } }",
            {"f": {"assignee": "\u0000"}},
            id="nested variable",
        ),
        pytest.param('query { privacyRequest(id: "a\\u0000b") { id } }', {}, id="string literal"),
        pytest.param(
            "query($p: String!, $ids: [String!]!) "
            "{ consentCheck(purpose: $p, subjectIds: $ids) { allowed } }",
            {"p": "marketing_email", "ids": [f"s-{i}" for i in range(40)] + ["s-\u0000"]},
            id="in a list of strings",
        ),
        pytest.param(
            "query($f: PrivacyRequestFilter) { privacyRequests(filter: $f) { edges { cursor } } }",
            {"f": {"type": ["ACCESS", "ERASURE"], "assignee": "a\u0000"}},
            id="beside a list",
        ),
        pytest.param(
            "mutation($i: SetConsentsInput!) { setConsents(input: $i) { __typename } }",
            {
                "i": {
                    "subjectId": "s-1",
                    "noticeVersion": 1,
                    "choices": [{"purpose": "a\u0000", "granted": True}],
                }
            },
            id="in a list of objects",
        ),
    ],
)
async def test_a_nul_character_is_refused_with_a_clear_message(
    gql: GraphQLClient, query: str, variables: dict[str, Any]
) -> None:
    # PostgreSQL cannot store NUL in text: the request is refused before any resolver runs.
    response = await gql.post(query, variables, token=agent_token())
    assert response.status_code == 400, response.text
    assert "NUL character" in response.text
    assert MASKED not in response.text
    # The same query text with clean variables still works (the refusal is not cached).
    if variables:
        clean = json.loads(json.dumps(variables).replace("\\u0000", ""))
        assert (await gql.post(query, clean, token=agent_token())).status_code == 200


async def test_outside_development_agents_cannot_read_verification_codes(database_url: str) -> None:
    async with client_for(database_url, env="production") as http:
        gql = GraphQLClient(http, None)  # type: ignore[arg-type]
        variables = {"input": {"type": "ACCESS", "jurisdiction": "GDPR", "email": "jane@example.com"}}
        submitted = (await gql(SUBMIT, variables))["submitPrivacyRequest"]
        assert submitted["verificationRequired"] is True
        request_id = submitted["request"]["id"]
        [message] = (await gql(OUTBOX, {"requestId": request_id}, token=agent_token()))["outboxMessages"]
    assert message["kind"] == "VERIFICATION_CODE"
    assert "shown only in development" in message["body"]
    assert not any(ch.isdigit() for ch in message["body"]), message["body"]
