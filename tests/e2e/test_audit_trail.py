"""Who did what (auditTrail, staff) and who read what (personal_data_access, written per operation)."""

from __future__ import annotations

from typing import Any

from tests.support.accountability_factories import Live
from tests.support.app import GraphQLClient, admin_token, agent_token, client_token, subject_token
from tests.support.consent_factories import MY_CONSENTS, check, choice, seed_catalogue, set_consents, withdraw
from tests.support.request_factories import APPROVE, ASSIGN, act, create_request

TRAIL = """
query Trail($subjectId: String, $requestId: ID, $first: Int, $after: String) {
  auditTrail(subjectId: $subjectId, requestId: $requestId, first: $first, after: $after) {
    edges { cursor node { kind eventId occurredAt actorKind actorId action subjectId requestId detail } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ACCESSES = """
query($subjectId: String, $requestId: ID, $first: Int, $after: String) {
  personalDataAccesses(subjectId: $subjectId, requestId: $requestId, first: $first, after: $after) {
    edges { node { actorKind actorId operation what subjectId requestId occurredAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

STAFF_READ = """
query CustomerCard($id: String!) {
  subject(externalId: $id) { externalId consents { purpose state } privacyRequests { id } }
}
"""


async def accesses(gql: GraphQLClient, **variables: Any) -> list[dict[str, Any]]:
    data = await gql(ACCESSES, variables, token=admin_token())
    return [e["node"] for e in data["personalDataAccesses"]["edges"]]


async def test_staff_page_through_a_subjects_consent_trail_newest_first(live: Live) -> None:
    gql = live.gql
    await seed_catalogue(gql)
    await set_consents(gql, choice(), choice("analytics", False), token=subject_token("c1"))
    await withdraw(gql, token=agent_token(), subjectId="c1", purpose="marketing_email")
    await set_consents(gql, choice(), token=subject_token("c2"))  # someone else: never in c1's trail
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await gql(TRAIL, {"subjectId": "c1", "first": 2, "after": after}, token=agent_token()))[
            "auditTrail"
        ]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [(n["action"], n["detail"]["purpose"], n["actorKind"], n["actorId"]) for n in seen] == [
        ("WITHDRAW", "marketing_email", "AGENT", "agent-1"),
        ("OBJECT", "analytics", "SUBJECT", "c1"),
        ("GRANT", "marketing_email", "SUBJECT", "c1"),
    ]
    assert {n["subjectId"] for n in seen} == {"c1"}
    assert [int(n["eventId"]) for n in seen] == sorted((int(n["eventId"]) for n in seen), reverse=True)


async def test_a_requests_trail_names_each_actor(live: Live) -> None:
    gql = live.gql
    request = await create_request(gql, "c1")
    await act(gql, ASSIGN, request["id"], token=admin_token("admin-2"), assignee="agent-7")
    await act(gql, APPROVE, request["id"], token=agent_token("agent-7"))
    page = (await gql(TRAIL, {"requestId": request["id"]}, token=agent_token()))["auditTrail"]
    nodes = [e["node"] for e in page["edges"]]
    assert [(n["action"], n["actorKind"], n["actorId"]) for n in nodes] == [
        ("APPROVE", "AGENT", "agent-7"),
        ("ASSIGN", "ADMIN", "admin-2"),
    ]
    assert nodes[0]["detail"]["toStatus"] == "IN_PROGRESS"
    assert {n["subjectId"] for n in nodes} == {"c1"}


async def test_the_trail_is_for_staff_and_needs_one_target(live: Live) -> None:
    gql = live.gql
    response = await gql.post(TRAIL, {"subjectId": "c1"}, token=subject_token("c1"))
    assert response.json()["errors"][0]["message"].startswith("Only staff")
    response = await gql.post(TRAIL, {}, token=agent_token())
    assert "Give either subjectId or requestId" in response.json()["errors"][0]["message"]
    response = await gql.post(TRAIL, {"subjectId": "c1", "after": "nonsense"}, token=agent_token())
    assert "Not a cursor" in response.json()["errors"][0]["message"]


async def test_reads_by_staff_and_clients_are_recorded_once_per_operation(live: Live) -> None:
    gql = live.gql
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("c1"))
    request = await create_request(gql, "c1")
    assert await accesses(gql, subjectId="c1") == []  # writes and the subject's own reads are not reads

    await gql(MY_CONSENTS, token=subject_token("c1"))  # the subject itself: not recorded
    await gql(STAFF_READ, {"id": "c1"}, token=agent_token("agent-3"))
    rows = await accesses(gql, subjectId="c1")
    assert sorted(r["what"] for r in rows) == ["subject.consents", "subject.privacyRequests"]
    assert {(r["actorKind"], r["actorId"], r["operation"]) for r in rows} == {
        ("STAFF", "agent-3", "CustomerCard")
    }
    assert len({r["occurredAt"] for r in rows}) == 1  # one operation, one moment

    await gql(
        "query($id: ID!) { privacyRequest(id: $id) { id } }", {"id": request["id"]}, token=agent_token()
    )
    by_request = await accesses(gql, requestId=request["id"])
    assert [(r["what"], r["subjectId"], r["operation"]) for r in by_request] == [
        ("privacyRequest", "c1", "anonymous")
    ]

    # consentCheck: queued and written in the background, in batches.
    await check(gql, ["c1", "c2", "c1"], token=client_token("consent:read", "shop-backend"))
    await live.state["access_batcher"].flush()
    checks = [r for r in await accesses(gql, subjectId="c1") if r["what"].startswith("consentCheck")]
    assert [(r["actorKind"], r["actorId"], r["what"]) for r in checks] == [
        ("API_CLIENT", "shop-backend", "consentCheck:marketing_email")
    ]
    assert len(await accesses(gql, subjectId="c2")) == 1

    # The trail itself is personal data: reading it is recorded too.
    await gql(TRAIL, {"subjectId": "c1"}, token=agent_token("agent-9"))
    latest = (await accesses(gql, subjectId="c1", first=1))[0]
    assert (latest["actorId"], latest["what"], latest["operation"]) == ("agent-9", "auditTrail", "Trail")


async def test_only_administrators_read_the_access_log(gql: GraphQLClient) -> None:
    response = await gql.post(ACCESSES, {"subjectId": "c1"}, token=agent_token())
    assert response.json()["errors"][0]["message"] == "Only an administrator may do this."
