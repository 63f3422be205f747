"""Queries have no union result: an expected failure is a GraphQL error with a code (and the fields)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.app import GraphQLClient, admin_token, agent_token

CASES = [
    pytest.param(
        "{ privacyRequests { edges { cursor } } }",
        None,
        "FORBIDDEN",
        None,
        id="queue, signed out (a permission class)",
    ),
    pytest.param(
        '{ personalDataAccesses(subjectId: "c1") { edges { cursor } } }',
        agent_token(),
        "FORBIDDEN",
        None,
        id="access log, not an administrator",
    ),
    pytest.param(
        '{ privacyRequests(after: "not-a-cursor") { edges { cursor } } }',
        agent_token(),
        "BAD_USER_INPUT",
        "after",
        id="queue, bad cursor",
    ),
    pytest.param(
        '{ complianceReport(from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { __typename } }',
        admin_token(),
        "BAD_USER_INPUT",
        None,
        id="report, period backwards",
    ),
    pytest.param(
        '{ webhookDeliveries(subscriptionId: "1", after: "nope") { edges { cursor } } }',
        admin_token(),
        "BAD_USER_INPUT",
        "after",
        id="webhook deliveries, bad cursor",
    ),
    pytest.param(
        '{ auditTrail(subjectId: "c1", after: "nope") { edges { cursor } } }',
        agent_token(),
        "BAD_USER_INPUT",
        "after",
        id="audit trail, bad cursor",
    ),
]


@pytest.mark.parametrize(("query", "token", "code", "field"), CASES)
async def test_expected_query_failures_carry_a_code(
    gql: GraphQLClient, query: str, token: str | None, code: str, field: str | None
) -> None:
    body: dict[str, Any] = (await gql.post(query, token=token)).json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert "Traceback" not in error["message"]
    assert error["message"] != "Unexpected error."
    if field is not None:
        assert [f["field"] for f in error["extensions"]["fields"]] == [field]
