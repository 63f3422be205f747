"""Consent operations and seeded catalogues for the consent tests."""

from __future__ import annotations

from typing import Any

from tests.support.app import GraphQLClient, subject_token
from tests.support.factories import create_purpose, publish_notice

EVENT_FIELDS = """
id subjectId purpose topic channel action method noticeVersion
origin { appId url userAgent ip } actor { kind id } occurredAt recordedAt
"""
CONSENT_FIELDS = "purpose topic channel state allowed reason updatedAt givenAt method noticeVersion"

SET_CONSENTS = f"""
mutation($input: SetConsentsInput!) {{
  setConsents(input: $input) {{
    __typename
    ... on SetConsentsSuccess {{
      subjectId replayed events {{ {EVENT_FIELDS} }} consents {{ {CONSENT_FIELDS} }}
    }}
    ... on UserError {{ message }}
    ... on ValidationError {{ fields {{ field message }} }}
  }}
}}
"""

WITHDRAW = f"""
mutation($input: WithdrawConsentInput!) {{
  withdrawConsent(input: $input) {{
    __typename
    ... on WithdrawConsentSuccess {{
      subjectId replayed events {{ {EVENT_FIELDS} }} consents {{ {CONSENT_FIELDS} }}
    }}
    ... on UserError {{ message }}
    ... on ValidationError {{ fields {{ field message }} }}
  }}
}}
"""

CHECK = """
query($purpose: String!, $ids: [String!]!, $channel: Channel, $topic: String) {
  consentCheck(purpose: $purpose, subjectIds: $ids, channel: $channel, topic: $topic) {
    subjectId allowed reason
  }
}
"""

EVENTS = f"""
query($subjectId: String, $since: String, $first: Int, $after: String) {{
  consentEvents(subjectId: $subjectId, since: $since, first: $first, after: $after) {{
    edges {{ cursor node {{ {EVENT_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

MY_CONSENTS = f"{{ me {{ externalId consents {{ {CONSENT_FIELDS} }} }} }}"


async def seed_catalogue(gql: GraphQLClient) -> None:
    """marketing_email (opt-in, topics, EMAIL/SMS), analytics (opt-out), essential (notice only), notice 1."""
    await create_purpose(gql, channels=["EMAIL", "SMS"])
    await create_purpose(
        gql,
        key="analytics",
        title="Analytics",
        legalBasis="LEGITIMATE_INTEREST",
        mechanism="OPT_OUT",
        category="ANALYTICS",
        channels=[],
        topics=[],
        reconfirmAfterDays=None,
    )
    await create_purpose(
        gql,
        key="essential",
        title="Running your account",
        legalBasis="CONTRACT",
        mechanism="NOTICE_ONLY",
        category="ESSENTIAL",
        channels=[],
        topics=[],
        reconfirmAfterDays=None,
    )
    await publish_notice(gql, ["marketing_email", "analytics", "essential"])


def choice(purpose: str = "marketing_email", granted: bool = True, **extra: Any) -> dict[str, Any]:
    return {"purpose": purpose, "granted": granted, **extra}


async def set_consents(
    gql: GraphQLClient, *choices: dict[str, Any], token: str | None = None, **fields: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "choices": list(choices) or [choice()],
        "noticeVersion": 1,
        "method": "CHECKBOX",
    }
    values.update(fields)
    data = await gql(SET_CONSENTS, {"input": values}, token=token or subject_token())
    result: dict[str, Any] = data["setConsents"]
    return result


async def withdraw(gql: GraphQLClient, token: str | None = None, **fields: Any) -> dict[str, Any]:
    data = await gql(WITHDRAW, {"input": fields}, token=token or subject_token())
    result: dict[str, Any] = data["withdrawConsent"]
    return result


async def check(
    gql: GraphQLClient, ids: list[str], token: str, purpose: str = "marketing_email", **extra: Any
) -> list[dict[str, Any]]:
    data = await gql(CHECK, {"purpose": purpose, "ids": ids, **extra}, token=token)
    result: list[dict[str, Any]] = data["consentCheck"]
    return result
