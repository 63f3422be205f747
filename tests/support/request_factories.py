"""Inputs, operations and seeded requests for the privacy-request tests."""

from __future__ import annotations

from typing import Any

from tests.support.app import GraphQLClient, agent_token, subject_token

REQUEST_FIELDS = """
id type status jurisdiction details receivedAt submittedBy duplicateOf assignee version
dueAt originalDueAt acknowledgeBy daysRemaining slaStatus slaRule { id inputs } extended closedAt
allowedActions subject { externalId } contact
history { action fromStatus toStatus actorKind actorId occurredAt reason data }
"""

ERRORS = """
... on UserError { message }
... on ValidationError { fields { field message } }
... on ConflictError { currentStatus allowedActions currentVersion }
"""

SUBMIT = f"""
mutation($input: SubmitPrivacyRequestInput!) {{
  submitPrivacyRequest(input: $input) {{
    __typename
    ... on SubmitPrivacyRequestSuccess {{ created verificationRequired request {{ {REQUEST_FIELDS} }} }}
    {ERRORS}
  }}
}}
"""

VERIFY = f"""
mutation($id: ID!, $code: String!) {{
  verifyPrivacyRequest(id: $id, code: $code) {{
    __typename ... on PrivacyRequestSuccess {{ request {{ id status }} }} {ERRORS}
  }}
}}
"""

OUTBOX = """
query($requestId: ID) {
  outboxMessages(requestId: $requestId) {
    id kind requestId recipient subjectLine body status attempts sentAt lastError
    deliveries { attempt succeeded detail }
  }
}
"""

GET = f"query($id: ID!) {{ privacyRequest(id: $id) {{ {REQUEST_FIELDS} }} }}"


def action_mutation(field: str, args: str = "", variables: str = "") -> str:
    return f"""
mutation($id: ID!, $expectedVersion: Int{variables}) {{
  {field}(id: $id, expectedVersion: $expectedVersion{args}) {{
    __typename ... on PrivacyRequestSuccess {{ request {{ {REQUEST_FIELDS} }} }} {ERRORS}
  }}
}}
"""


APPROVE = action_mutation("approvePrivacyRequest")
COMPLETE = action_mutation("completePrivacyRequest")
RETRY = action_mutation("retryPrivacyRequest")
CANCEL = action_mutation("cancelPrivacyRequest", ", reason: $reason", ", $reason: String")
ASSIGN = action_mutation("assignPrivacyRequest", ", assignee: $assignee", ", $assignee: String")
EXTEND = action_mutation("extendPrivacyRequest", ", reason: $reason", ", $reason: String!")
REJECT = action_mutation(
    "rejectPrivacyRequest",
    ", reason: $reason, message: $message",
    ", $reason: RejectionReason!, $message: String!",
)
REQUEST_INFO = action_mutation("requestInformation", ", question: $question", ", $question: String!")
PROVIDE_INFO = action_mutation("provideInformation", ", answer: $answer", ", $answer: String!")


def request_input(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"type": "ACCESS", "jurisdiction": "GDPR", "details": {}}
    values.update(overrides)
    return values


async def submit(gql: GraphQLClient, token: str | None = None, **overrides: Any) -> dict[str, Any]:
    data = await gql(SUBMIT, {"input": request_input(**overrides)}, token=token)
    result: dict[str, Any] = data["submitPrivacyRequest"]
    assert result["__typename"] == "SubmitPrivacyRequestSuccess", result
    return result


async def create_request(gql: GraphQLClient, subject: str = "customer-1", **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = (await submit(gql, subject_token(subject), **overrides))["request"]
    return request


async def act(
    gql: GraphQLClient, mutation: str, request_id: str, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    data = await gql(mutation, {"id": request_id, **variables}, token=token or agent_token())
    result: dict[str, Any] = next(iter(data.values()))
    return result
