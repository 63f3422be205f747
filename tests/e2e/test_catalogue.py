"""Purposes and notices end to end through GraphQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.app import GraphQLClient, admin_token, agent_token, subject_token
from tests.support.factories import (
    PUBLISH_NOTICE,
    UPSERT_PURPOSE,
    create_purpose,
    notice_input,
    publish_notice,
    purpose_input,
)

NOTICE_QUERY = """
query($version: Int) {
  privacyNotice(version: $version) {
    version summary policyUrl publishedAt
    dataCategories { key purposes retention recipients }
    purposes { key title description materialChange }
  }
}
"""


async def test_admin_publishes_two_versions_and_anyone_reads_them(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    await create_purpose(
        gql,
        key="analytics",
        title="Analytics",
        legalBasis="LEGITIMATE_INTEREST",
        mechanism="OPT_OUT",
        category="ANALYTICS",
        channels=[],
        topics=[],
    )
    first = await publish_notice(gql, ["marketing_email", "analytics"])
    assert first["version"] == 1
    await create_purpose(gql, title="Marketing emails and newsletters", expectedVersion=1)
    second = await publish_notice(gql, ["marketing_email", "analytics"], material=("marketing_email",))
    assert second["version"] == 2

    anonymous = await gql(NOTICE_QUERY)
    assert anonymous["privacyNotice"]["version"] == 2
    assert [p["materialChange"] for p in anonymous["privacyNotice"]["purposes"]] == [True, False]
    assert anonymous["privacyNotice"]["purposes"][0]["title"] == "Marketing emails and newsletters"

    # Version 1 is immutable: it keeps the wording it was published with.
    old = await gql(NOTICE_QUERY, {"version": 1})
    assert old["privacyNotice"]["purposes"][0]["title"] == "Marketing emails"
    assert (await gql(NOTICE_QUERY, {"version": 3}))["privacyNotice"] is None

    purposes = await gql("{ purposes { key lastMaterialVersion version } }")
    assert purposes["purposes"] == [
        {"key": "analytics", "lastMaterialVersion": None, "version": 1},
        {"key": "marketing_email", "lastMaterialVersion": 2, "version": 2},
    ]


async def test_no_notice_yet_reads_as_null(gql: GraphQLClient) -> None:
    assert (await gql(NOTICE_QUERY))["privacyNotice"] is None


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "PermissionDeniedError"),
        (subject_token(), "PermissionDeniedError"),
        (agent_token(), "PermissionDeniedError"),
        (admin_token(), "UpsertPurposeSuccess"),
    ],
)
async def test_only_admins_change_purposes(gql: GraphQLClient, token: str | None, expected: str) -> None:
    data = await gql(UPSERT_PURPOSE, {"input": purpose_input()}, token=token)
    assert data["upsertPurpose"]["__typename"] == expected
    if expected == "PermissionDeniedError":
        assert data["upsertPurpose"]["message"] == "Only an administrator may do this."
        assert (await gql("{ purposes { key } }"))["purposes"] == []


async def test_only_admins_publish(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    data = await gql(PUBLISH_NOTICE, {"input": notice_input(["marketing_email"])}, token=subject_token())
    assert data["publishPrivacyNotice"]["__typename"] == "PermissionDeniedError"
    assert (await gql(NOTICE_QUERY))["privacyNotice"] is None


async def test_invalid_purpose_names_every_field(gql: GraphQLClient) -> None:
    bad = purpose_input(
        key="Bad Key",
        title=" ",
        mechanism="OPT_OUT",
        topics=[{"key": "x1", "title": "A"}, {"key": "x1", "title": "B"}],
        reconfirmAfterDays=0,
    )
    result = (await gql(UPSERT_PURPOSE, {"input": bad}, token=admin_token()))["upsertPurpose"]
    assert result["__typename"] == "ValidationError"
    fields = {f["field"] for f in result["fields"]}
    assert fields == {"key", "title", "mechanism", "topics.1.key", "reconfirmAfterDays"}
    assert (await gql("{ purposes { key } }"))["purposes"] == []


async def test_stale_purpose_edit_is_a_conflict(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    await create_purpose(gql, title="Edited once", expectedVersion=1)
    stale = await gql(
        UPSERT_PURPOSE,
        {"input": purpose_input(title="Edited from an old page", expectedVersion=1)},
        token=admin_token(),
    )
    assert stale["upsertPurpose"]["__typename"] == "ConflictError"
    assert stale["upsertPurpose"]["currentVersion"] == 2
    purposes = await gql("{ purposes { title } }")
    assert purposes["purposes"] == [{"title": "Edited once"}]


async def test_notice_refers_only_to_existing_purposes(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    draft = notice_input(["marketing_email", "ghost"])
    result = (await gql(PUBLISH_NOTICE, {"input": draft}, token=admin_token()))["publishPrivacyNotice"]
    assert result["__typename"] == "ValidationError"
    assert {"field": "purposes.1.key", "message": "no purpose 'ghost'; create it first"} in result["fields"]
    assert (await gql(NOTICE_QUERY))["privacyNotice"] is None


async def test_first_notice_cannot_claim_a_material_change(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    draft = notice_input(["marketing_email"], material=("marketing_email",))
    result = (await gql(PUBLISH_NOTICE, {"input": draft}, token=admin_token()))["publishPrivacyNotice"]
    assert result["__typename"] == "ValidationError"
    assert result["fields"][0]["field"] == "purposes"


async def test_a_bad_token_is_refused_with_401(gql: GraphQLClient) -> None:
    response = await gql.post("{ purposes { key } }", token="not-a-jwt")
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "The bearer token is not a valid JWT."


async def test_a_malformed_query_is_a_400_not_a_500(gql: GraphQLClient) -> None:
    response = await gql.post("{ purposes { key ")
    assert response.status_code == 400
    assert "Syntax Error" in response.json()["errors"][0]["message"]
    unknown = await gql.post("{ purposes { nope } }")
    assert unknown.status_code == 400
    assert "Cannot query field 'nope'" in unknown.json()["errors"][0]["message"]


async def test_two_admins_publishing_at_once_get_two_versions_or_a_conflict(gql: GraphQLClient) -> None:
    await create_purpose(gql)
    # The first notice, then two more published at the same moment: both would be version 2.
    await publish_notice(gql, ["marketing_email"])

    async def publish() -> dict[str, Any]:
        variables = {"input": notice_input(["marketing_email"])}
        data = await gql(PUBLISH_NOTICE, variables, token=admin_token())
        result: dict[str, Any] = data["publishPrivacyNotice"]
        return result

    results = await asyncio.gather(publish(), publish(), publish())
    kinds = sorted(r["__typename"] for r in results)
    assert set(kinds) <= {"PublishPrivacyNoticeSuccess", "ConflictError"}, results
    published = sorted(
        r["notice"]["version"] for r in results if r["__typename"] == "PublishPrivacyNoticeSuccess"
    )
    assert published == list(range(2, 2 + len(published)))
    for result in results:
        if result["__typename"] == "ConflictError":
            assert "send it again" in result["message"]


async def test_two_admins_creating_one_purpose_at_once_get_it_once_or_a_conflict(gql: GraphQLClient) -> None:
    async def create() -> dict[str, Any]:
        data = await gql(UPSERT_PURPOSE, {"input": purpose_input(key="raced")}, token=admin_token())
        result: dict[str, Any] = data["upsertPurpose"]
        return result

    results = await asyncio.gather(create(), create(), create())
    kinds = [r["__typename"] for r in results]
    assert set(kinds) <= {"UpsertPurposeSuccess", "ConflictError"}, results
    assert kinds.count("UpsertPurposeSuccess") >= 1
