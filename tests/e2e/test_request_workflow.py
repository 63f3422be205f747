"""A request from intake to completion or rejection through GraphQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.app import GraphQLClient, admin_token, agent_token, client_token, subject_token
from tests.support.request_factories import (
    APPROVE,
    ASSIGN,
    CANCEL,
    COMPLETE,
    EXTEND,
    GET,
    OUTBOX,
    PROVIDE_INFO,
    REJECT,
    REQUEST_INFO,
    RETRY,
    SUBMIT,
    act,
    create_request,
    request_input,
    submit,
)


async def test_subject_request_approved_and_completed_by_an_agent_with_history(gql: GraphQLClient) -> None:
    request = await create_request(gql, type="ERASURE", details={"all": True})
    assert request["status"] == "SUBMITTED"
    assert request["subject"] == {"externalId": "customer-1"}
    assert request["slaRule"]["id"] == "GDPR-12.3/v1"
    assert request["slaStatus"] == "ON_TRACK"
    assert request["allowedActions"] == ["CANCEL"]

    approved = await act(gql, APPROVE, request["id"], expectedVersion=1)
    assert approved["__typename"] == "PrivacyRequestSuccess", approved
    assert approved["request"]["status"] == "IN_PROGRESS"
    assert approved["request"]["version"] == 2

    done = await act(gql, COMPLETE, request["id"], token=admin_token())
    assert done["request"]["status"] == "COMPLETED"
    assert done["request"]["slaStatus"] == "MET"
    assert done["request"]["closedAt"] is not None
    assert done["request"]["daysRemaining"] is None
    history = done["request"]["history"]
    assert [(h["action"], h["fromStatus"], h["toStatus"], h["actorKind"]) for h in history] == [
        ("APPROVE", "SUBMITTED", "IN_PROGRESS", "AGENT"),
        ("COMPLETE", "IN_PROGRESS", "COMPLETED", "ADMIN"),
    ]
    assert history[0]["actorId"] == "agent-1"


async def test_rejection_needs_a_reason_code_and_a_message(gql: GraphQLClient) -> None:
    request = await create_request(gql)
    refused = await act(gql, REJECT, request["id"], reason="EXCESSIVE", message="  ")
    assert refused["__typename"] == "ValidationError"
    assert refused["fields"][0]["field"] == "message"
    rejected = await act(
        gql, REJECT, request["id"], reason="NOT_A_CUSTOMER", message="We hold no data about you."
    )
    assert rejected["request"]["status"] == "REJECTED"
    event = rejected["request"]["history"][-1]
    assert event["reason"] == "NOT_A_CUSTOMER"
    assert event["data"] == {"message": "We hold no data about you."}


async def test_an_illegal_action_is_a_conflict_naming_status_and_allowed_actions(gql: GraphQLClient) -> None:
    request = await create_request(gql)
    refused = await act(gql, COMPLETE, request["id"])
    assert refused["__typename"] == "ConflictError"
    assert refused["currentStatus"] == "SUBMITTED"
    assert refused["allowedActions"] == [
        "APPROVE",
        "REJECT",
        "REQUEST_INFORMATION",
        "CANCEL",
        "EXTEND",
        "ASSIGN",
    ]
    assert "Cannot COMPLETE a request that is SUBMITTED" in refused["message"]


async def test_a_stale_version_is_refused(gql: GraphQLClient) -> None:
    request = await create_request(gql)
    await act(gql, ASSIGN, request["id"], assignee="agent-2", expectedVersion=1)
    stale = await act(gql, APPROVE, request["id"], expectedVersion=1)
    assert stale["__typename"] == "ConflictError"
    assert stale["currentVersion"] == 2


async def test_two_agents_approving_at_once_one_wins_and_the_other_gets_a_conflict(
    gql: GraphQLClient,
) -> None:
    request = await create_request(gql)
    results = await asyncio.gather(
        act(gql, APPROVE, request["id"], token=agent_token("agent-1"), expectedVersion=1),
        act(gql, APPROVE, request["id"], token=agent_token("agent-2"), expectedVersion=1),
    )
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["ConflictError", "PrivacyRequestSuccess"]
    final = (await gql(GET, {"id": request["id"]}, token=agent_token()))["privacyRequest"]
    assert final["version"] == 2
    assert len(final["history"]) == 1


async def test_subjects_see_and_cancel_only_their_own_requests_and_a_denial_reveals_nothing(
    gql: GraphQLClient,
) -> None:
    mine = await create_request(gql, subject="alice")
    theirs = await create_request(gql, subject="bob")
    alice = subject_token("alice")
    assert (await gql(GET, {"id": mine["id"]}, token=alice))["privacyRequest"]["id"] == mine["id"]
    assert (await gql(GET, {"id": theirs["id"]}, token=alice))["privacyRequest"] is None
    assert (await gql(GET, {"id": "0" * 32}, token=alice))["privacyRequest"] is None
    hidden = await act(gql, CANCEL, theirs["id"], token=alice)
    missing = await act(gql, CANCEL, "0" * 32, token=alice)
    assert hidden["__typename"] == missing["__typename"] == "NotFoundError"
    assert hidden["message"].replace(theirs["id"], "X") == missing["message"].replace("0" * 32, "X")
    me = await gql("{ me { privacyRequests { id status } } }", token=alice)
    assert me["me"]["privacyRequests"] == [{"id": mine["id"], "status": "SUBMITTED"}]
    cancelled = await act(gql, CANCEL, mine["id"], token=alice, reason="Changed my mind")
    assert cancelled["request"]["status"] == "CANCELLED"
    assert cancelled["request"]["history"][-1]["actorKind"] == "SUBJECT"
    denied = await act(gql, APPROVE, theirs["id"], token=subject_token("bob"))
    assert denied["__typename"] == "PermissionDeniedError"
    client = await act(gql, APPROVE, theirs["id"], token=client_token("consent:read"))
    assert client["__typename"] == "PermissionDeniedError"


async def test_idempotency_key_returns_the_same_request_and_a_second_open_one_is_a_duplicate(
    gql: GraphQLClient,
) -> None:
    token = subject_token("carol")
    first = await submit(gql, token, idempotencyKey="k-1")
    again = await submit(gql, token, idempotencyKey="k-1")
    assert first["created"] is True
    assert again["created"] is False
    assert again["request"]["id"] == first["request"]["id"]
    # Another submitter's identical key is theirs, not carol's.
    other = await submit(gql, subject_token("dave"), idempotencyKey="k-1")
    assert other["request"]["id"] != first["request"]["id"]
    second = await submit(gql, token, idempotencyKey="k-2")
    assert second["request"]["duplicateOf"] == first["request"]["id"]
    different_type = await submit(gql, token, type="PORTABILITY")
    assert different_type["request"]["duplicateOf"] is None


async def test_an_agent_logs_a_postal_request_with_its_real_received_at(gql: GraphQLClient) -> None:
    received = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    result = await submit(
        gql,
        agent_token(),
        subjectExternalId="erin",
        type="RECTIFICATION",
        jurisdiction="PIPEDA",
        receivedAt=received.isoformat(),
        details={"changes": [{"field": "address", "currentValue": "1 Old St", "requestedValue": "2 New St"}]},
    )
    request = result["request"]
    assert datetime.fromisoformat(request["receivedAt"]) == received
    assert request["submittedBy"] == "staff:agent-1"
    assert request["slaRule"]["inputs"]["received_at"] == received.isoformat()
    assert request["slaRule"]["inputs"]["period"] == "30 CALENDAR_DAYS"
    refused = await gql(
        SUBMIT, {"input": request_input(receivedAt=received.isoformat())}, token=subject_token()
    )
    assert refused["submitPrivacyRequest"]["fields"][0]["field"] == "receivedAt"


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"all": True, "categories": ["contact"]}, "details.categories"),
        ({"purposes": []}, "details.purposes"),
    ],
)
async def test_details_are_validated_per_type(
    gql: GraphQLClient, details: dict[str, object], field: str
) -> None:
    request_type = "ERASURE" if "all" in details else "OBJECTION"
    data = await gql(
        SUBMIT, {"input": request_input(type=request_type, details=details)}, token=subject_token()
    )
    result = data["submitPrivacyRequest"]
    assert result["__typename"] == "ValidationError"
    assert [f["field"] for f in result["fields"]] == [field]


async def test_extension_once_before_the_deadline_queues_the_notice(gql: GraphQLClient) -> None:
    request = await create_request(gql, jurisdiction="CCPA", email="frank@example.com")
    assert request["acknowledgeBy"] is not None
    no_reason = await act(gql, EXTEND, request["id"], reason=" ")
    assert no_reason["__typename"] == "ValidationError"
    extended = await act(gql, EXTEND, request["id"], reason="Many systems to search")
    assert extended["__typename"] == "PrivacyRequestSuccess", extended
    after = extended["request"]
    assert after["extended"] is True
    assert after["originalDueAt"] == request["originalDueAt"]
    assert datetime.fromisoformat(after["dueAt"]) - datetime.fromisoformat(request["dueAt"]) == timedelta(
        days=45
    )
    assert after["history"][-1]["action"] == "EXTEND"
    twice = await act(gql, EXTEND, request["id"], reason="Still more")
    assert twice["__typename"] == "ConflictError"
    assert "only one extension" in twice["message"]
    outbox = (await gql(OUTBOX, {"requestId": request["id"]}, token=agent_token()))["outboxMessages"]
    # Newest first: the notice, then the acknowledgement queued at intake (the agent gave an email).
    assert [m["kind"] for m in outbox] == ["EXTENSION_NOTICE", "REQUEST_RECEIVED"]
    assert outbox[0]["recipient"] == "f***@e***.com"
    assert "Many systems to search" in outbox[0]["body"]


async def test_lgpd_allows_no_extension(gql: GraphQLClient) -> None:
    request = await create_request(gql, jurisdiction="LGPD")
    refused = await act(gql, EXTEND, request["id"], reason="Busy")
    assert refused["__typename"] == "ConflictError"
    assert "allows no extension" in refused["message"]


async def test_uk_gdpr_clock_pauses_while_awaiting_the_subject_and_gdpr_keeps_running(
    gql: GraphQLClient,
) -> None:
    uk = await create_request(gql, jurisdiction="UK_GDPR")
    asked = await act(gql, REQUEST_INFO, uk["id"], question="Which account?")
    assert asked["request"]["status"] == "AWAITING_SUBJECT"
    assert asked["request"]["slaStatus"] == "PAUSED"
    answered = await act(gql, PROVIDE_INFO, uk["id"], token=subject_token(), answer="The shop one")
    assert answered["request"]["status"] == "PENDING_REVIEW"
    assert answered["request"]["slaStatus"] != "PAUSED"
    # Any part of a day counts as one: a pause of seconds moves the deadline by at least a day.
    assert answered["request"]["dueAt"] > uk["dueAt"]
    assert answered["request"]["slaRule"]["inputs"]["pause_days_credited"] == 1

    eu = await create_request(gql, subject="gina", jurisdiction="GDPR")
    asked_eu = await act(gql, REQUEST_INFO, eu["id"], question="Which account?")
    assert asked_eu["request"]["slaStatus"] == "ON_TRACK"
    answered_eu = await act(gql, PROVIDE_INFO, eu["id"], token=subject_token("gina"), answer="Shop")
    assert answered_eu["request"]["dueAt"] == eu["dueAt"]


async def test_retry_is_only_for_failed_requests(gql: GraphQLClient) -> None:
    request = await create_request(gql)
    refused = await act(gql, RETRY, request["id"])
    assert refused["__typename"] == "ConflictError"
    assert refused["currentStatus"] == "SUBMITTED"


async def test_a_subject_sees_that_staff_acted_but_not_which_staff_member(gql: GraphQLClient) -> None:
    # Logged by an agent for customer-7, assigned and approved by agents: staff identities are staff data.
    logged = await submit(gql, agent_token("agent-4"), subjectExternalId="customer-7")
    request_id = logged["request"]["id"]
    await act(gql, ASSIGN, request_id, token=agent_token("agent-4"), assignee="agent-9")
    await act(gql, APPROVE, request_id, token=agent_token("agent-9"))

    as_subject = (await gql(GET, {"id": request_id}, token=subject_token("customer-7")))["privacyRequest"]
    assert as_subject["submittedBy"] == "staff"
    assert as_subject["assignee"] is None
    assert [(e["action"], e["actorKind"], e["actorId"]) for e in as_subject["history"]] == [
        ("ASSIGN", "AGENT", None),
        ("APPROVE", "AGENT", None),
    ]
    assert "agent-9" not in str(as_subject["history"])  # nor in an assignment's data

    as_staff = (await gql(GET, {"id": request_id}, token=agent_token("agent-1")))["privacyRequest"]
    assert as_staff["submittedBy"] == "staff:agent-4"
    assert as_staff["assignee"] == "agent-9"
    assert [e["actorId"] for e in as_staff["history"]] == ["agent-4", "agent-9"]
    assert as_staff["history"][0]["data"] == {"assignee": "agent-9", "previous": None}
