"""Plain factory functions with keyword overrides: inputs and seeded objects for the tests."""

from __future__ import annotations

from typing import Any

from tests.support.app import GraphQLClient, admin_token

UPSERT_PURPOSE = """
mutation($input: UpsertPurposeInput!) {
  upsertPurpose(input: $input) {
    __typename
    ... on UpsertPurposeSuccess { purpose { key title version mechanism topics { key } lastMaterialVersion } }
    ... on UserError { message }
    ... on ValidationError { fields { field message } }
    ... on ConflictError { currentVersion }
  }
}
"""

PUBLISH_NOTICE = """
mutation($input: PublishPrivacyNoticeInput!) {
  publishPrivacyNotice(input: $input) {
    __typename
    ... on PublishPrivacyNoticeSuccess { notice { version summary purposes { key title materialChange } } }
    ... on UserError { message }
    ... on ValidationError { fields { field message } }
  }
}
"""


def purpose_input(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "key": "marketing_email",
        "title": "Marketing emails",
        "description": "News about our products and offers, by email.",
        "legalBasis": "CONSENT",
        "mechanism": "OPT_IN",
        "category": "MARKETING",
        "channels": ["EMAIL"],
        "topics": [
            {"key": "product_updates", "title": "Product updates"},
            {"key": "promotions", "title": "Promotions"},
        ],
        "recipients": ["Mailer Inc."],
        "reconfirmAfterDays": 365,
    }
    values.update(overrides)
    return values


def notice_input(purposes: list[str], material: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "summary": "We use your email address to send you the messages you chose.",
        "dataCategories": [
            {
                "key": "contact",
                "description": "Your email address",
                "purposes": purposes,
                "recipients": ["Mailer Inc."],
                "retention": "Until you close your account, then 30 days",
            }
        ],
        "purposes": [{"key": p, "materialChange": p in material} for p in purposes],
        "policyUrl": "https://shop.example/privacy",
    }
    values.update(overrides)
    return values


async def create_purpose(gql: GraphQLClient, **overrides: Any) -> dict[str, Any]:
    data = await gql(UPSERT_PURPOSE, {"input": purpose_input(**overrides)}, token=admin_token())
    result: dict[str, Any] = data["upsertPurpose"]
    assert result["__typename"] == "UpsertPurposeSuccess", result
    return result["purpose"]


async def publish_notice(
    gql: GraphQLClient, purposes: list[str], material: tuple[str, ...] = (), **overrides: Any
) -> dict[str, Any]:
    data = await gql(
        PUBLISH_NOTICE, {"input": notice_input(purposes, material, **overrides)}, token=admin_token()
    )
    result: dict[str, Any] = data["publishPrivacyNotice"]
    assert result["__typename"] == "PublishPrivacyNoticeSuccess", result
    return result["notice"]
