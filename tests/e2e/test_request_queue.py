"""The agent queue: filters, order by deadline then receipt, cursor pagination, staff only."""

from __future__ import annotations

from tests.support.app import GraphQLClient, agent_token, subject_token
from tests.support.request_factories import ASSIGN, act, create_request

QUEUE = """
query($filter: PrivacyRequestFilter, $first: Int, $after: String) {
  privacyRequests(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id jurisdiction dueAt assignee subject { externalId } history { action } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def _queue(gql: GraphQLClient, **variables: object) -> dict[str, object]:
    data = await gql(QUEUE, variables, token=agent_token())
    result: dict[str, object] = data["privacyRequests"]
    return result


async def test_the_queue_is_ordered_by_deadline_filtered_and_paginated(gql: GraphQLClient) -> None:
    lgpd = await create_request(gql, subject="a", jurisdiction="LGPD")  # 15 days
    ccpa = await create_request(gql, subject="b", jurisdiction="CCPA")  # 45 days
    pipeda = await create_request(gql, subject="c", jurisdiction="PIPEDA")  # 30 days
    gdpr = await create_request(gql, subject="d", jurisdiction="GDPR")  # ~1 month
    await act(gql, ASSIGN, ccpa["id"], assignee="agent-7")

    # GDPR's month and PIPEDA's 30 days end close together, in different time zones: compare instants.
    expected = [
        r["id"] for r in sorted([lgpd, ccpa, pipeda, gdpr], key=lambda r: (r["dueAt"], r["receivedAt"]))
    ]
    assert expected[0] == lgpd["id"]
    assert expected[-1] == ccpa["id"]
    first = await _queue(gql, first=2)
    ids = [e["node"]["id"] for e in first["edges"]]  # type: ignore[index]
    assert ids == expected[:2]
    assert first["pageInfo"] == {"hasNextPage": True, "endCursor": first["edges"][-1]["cursor"]}  # type: ignore[index]
    rest = await _queue(gql, first=10, after=first["pageInfo"]["endCursor"])  # type: ignore[index]
    rest_ids = [e["node"]["id"] for e in rest["edges"]]  # type: ignore[index]
    assert rest_ids == expected[2:]
    assert rest["pageInfo"]["hasNextPage"] is False  # type: ignore[index]

    by_jurisdiction = await _queue(gql, filter={"jurisdiction": ["CCPA", "LGPD"]})
    assert [e["node"]["id"] for e in by_jurisdiction["edges"]] == [lgpd["id"], ccpa["id"]]  # type: ignore[index]
    assigned = await _queue(gql, filter={"assignee": "agent-7"})
    [edge] = assigned["edges"]  # type: ignore[misc]
    assert edge["node"]["history"] == [{"action": "ASSIGN"}]
    unassigned = await _queue(gql, filter={"unassigned": True, "dueBefore": ccpa["dueAt"]})
    assert len(unassigned["edges"]) == 3  # type: ignore[arg-type]
    on_track = await _queue(
        gql, filter={"slaStatus": ["ON_TRACK"], "status": ["SUBMITTED"], "type": ["ACCESS"]}
    )
    assert len(on_track["edges"]) == 4  # type: ignore[arg-type]
    at_risk = await _queue(gql, filter={"slaStatus": ["AT_RISK"]})
    assert at_risk["edges"] == []


async def test_the_queue_is_for_staff_and_a_bad_cursor_is_explained(gql: GraphQLClient) -> None:
    response = await gql.post(QUEUE, {}, token=subject_token())
    assert response.json()["errors"][0]["message"].startswith("Only staff")
    response = await gql.post(QUEUE, {"after": "not-a-cursor"}, token=agent_token())
    assert "Not a cursor" in str(response.json())
