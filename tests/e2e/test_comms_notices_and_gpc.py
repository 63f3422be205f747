"""GPC from a signed-in subject (once, conflict surfaced), notice-change messages, permission changed,
breach notices: through GraphQL and HTTP, messages read back from a real SMTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.app import GraphQLClient, admin_token, agent_token, client_token, subject_token
from tests.support.comms_flow_factories import (
    BREACH,
    GPC_CONFLICTS,
    OUTBOX_ALL,
    SET_CONTACT,
    comms_app,
    eventually,
    link_in,
    text_of,
    to_path,
    write_systems_file,
)
from tests.support.consent_factories import EVENTS, check, choice, seed_catalogue, set_consents, withdraw
from tests.support.factories import create_purpose, publish_notice
from tests.support.smtp import Inbox, smtp_inbox

__all__ = ["smtp_inbox"]
READER = client_token("consent:read")


async def contact(gql: GraphQLClient, who: str) -> None:
    saved = await gql(SET_CONTACT, {"input": {"email": f"{who}@example.com"}}, token=subject_token(who))
    assert saved["setContactDetails"]["__typename"] == "ContactDetailsSaved"


async def outbox(gql: GraphQLClient, kind: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (await gql(OUTBOX_ALL, token=agent_token()))["outboxMessages"]
    return [m for m in messages if m["kind"] == kind]


async def gpc_actions(gql: GraphQLClient, who: str) -> list[str]:
    data = await gql(EVENTS, {"subjectId": who, "first": 100}, token=agent_token())
    return [e["node"]["action"] for e in data["consentEvents"]["edges"] if e["node"]["method"] == "GPC"]


async def test_gpc_is_honoured_once_and_a_conflict_with_an_opt_in_is_shown(
    database_url: str, smtp_inbox: Inbox
) -> None:
    async with comms_app(database_url, smtp_inbox) as gql:
        await create_purpose(
            gql, key="ad_sharing", title="Sharing for advertising", legalBasis="LEGITIMATE_INTEREST",
            mechanism="OPT_OUT", category="THIRD_PARTY_SHARING", channels=[], topics=[],
            reconfirmAfterDays=None, gpcOptOut=True,
        )  # fmt: skip
        await seed_catalogue(gql)
        granted = await set_consents(gql, choice("ad_sharing"), token=subject_token("g-1"))
        assert granted["__typename"] == "SetConsentsSuccess"
        gpc = {"Sec-GPC": "1"}
        for who in ("g-1", "g-2", "g-1", "g-1"):
            await gql("{ me { externalId } }", token=subject_token(who), headers=gpc)

        async def recorded() -> bool:
            return await gpc_actions(gql, "g-1") != [] and await gpc_actions(gql, "g-2") != []

        await eventually(recorded)
        assert await gpc_actions(gql, "g-1") == ["GPC_OPT_OUT"]
        assert await check(gql, ["g-1", "g-2"], READER, purpose="ad_sharing") == [
            {"subjectId": "g-1", "allowed": False, "reason": "GPC_OPT_OUT"},
            {"subjectId": "g-2", "allowed": False, "reason": "GPC_OPT_OUT"},
        ]
        mine = (await gql(GPC_CONFLICTS, token=subject_token("g-1")))["me"]
        [conflict] = mine["gpcConflicts"]
        assert conflict["purpose"] == "ad_sharing"
        assert conflict["grantedAt"] is not None
        assert "Global Privacy Control" in conflict["note"]
        assert (await gql(GPC_CONFLICTS, token=subject_token("g-2")))["me"]["gpcConflicts"] == []
        # Told of the conflict, g-1 opts in again: their informed choice stands, the conflict is resolved.
        await set_consents(gql, choice("ad_sharing"), token=subject_token("g-1"))
        await gql("{ me { externalId } }", token=subject_token("g-1"), headers=gpc)
        assert (await gql(GPC_CONFLICTS, token=subject_token("g-1")))["me"]["gpcConflicts"] == []
        assert (await check(gql, ["g-1"], READER, purpose="ad_sharing"))[0]["reason"] == "GRANTED"


async def test_notice_changes_ask_the_affected_to_reconfirm_and_tell_the_rest(
    database_url: str, smtp_inbox: Inbox
) -> None:
    async with comms_app(database_url, smtp_inbox) as gql:
        await seed_catalogue(gql)
        for who in ("n-1", "n-2", "n-3"):
            await contact(gql, who)
        await set_consents(gql, choice(), token=subject_token("n-1"))
        await set_consents(gql, choice("analytics", granted=False), token=subject_token("n-2"))
        # n-3 made no choice: a notice change is not announced to them.
        await publish_notice(
            gql, ["marketing_email", "analytics", "essential"], material=("marketing_email",)
        )
        assert (await check(gql, ["n-1"], READER))[0]["reason"] == "NEEDS_RECONSENT"
        messages = await smtp_inbox.wait_for(2)
        assert sorted(m["To"] for m in messages) == ["n-1@example.com", "n-2@example.com"]
        material = text_of(next(m for m in messages if m["To"] == "n-1@example.com"))
        assert "no longer covers" in material
        assert "Marketing emails" in material
        plain = text_of(next(m for m in messages if m["To"] == "n-2@example.com"))
        assert "You do not need to do anything" in plain
        # One click on the link in the message, and n-1's consent counts again under the new notice.
        assert (await gql.http.post(to_path(link_in(material, "reconfirm")))).status_code == 200
        assert await check(gql, ["n-1"], READER) == [
            {"subjectId": "n-1", "allowed": True, "reason": "GRANTED"}
        ]
        await publish_notice(gql, ["marketing_email", "analytics", "essential"])
        assert len(await outbox(gql, "NOTICE_CHANGED")) == 4
        assert all("You do not need" in m["body"] for m in (await outbox(gql, "NOTICE_CHANGED"))[:2])


async def test_changes_by_others_are_announced_to_the_subject(database_url: str, smtp_inbox: Inbox) -> None:
    async with comms_app(database_url, smtp_inbox) as gql:
        await seed_catalogue(gql)
        await contact(gql, "p-1")
        await set_consents(gql, choice(), token=subject_token("p-1"))
        await withdraw(gql, token=subject_token("p-1"), purpose="marketing_email", topic="promotions")
        assert await outbox(gql, "PERMISSION_CHANGED") == []  # the subject's own choices
        by_agent = await set_consents(
            gql, choice(granted=False), token=agent_token(), subjectId="p-1", method=None
        )
        assert by_agent["__typename"] == "SetConsentsSuccess"
        [message] = await smtp_inbox.wait_for(1)
        assert message["To"] == "p-1@example.com"
        text = text_of(message)
        assert "a member of our support team" in text
        assert "withdrawn" in text
        assert "https://shop.example/account/privacy" in text


async def test_breach_notices_reach_the_subjects_of_the_affected_systems(
    database_url: str, smtp_inbox: Inbox, tmp_path: Path
) -> None:
    async with comms_app(database_url, smtp_inbox, systems_file=write_systems_file(tmp_path)) as gql:
        await seed_catalogue(gql)
        for who in ("b-1", "b-2", "b-3"):
            await contact(gql, who)
        await set_consents(gql, choice(), token=subject_token("b-1"))
        await set_consents(gql, choice("analytics", granted=False), token=subject_token("b-2"))
        notice = {
            "dataCategories": ["newsletter_history"],
            "summary": "A copy of the newsletter list was exposed for two days.",
            "likelyConsequences": "You may receive phishing emails.",
            "measuresTaken": "We closed access and told the regulator.",
            "contact": "dpo@shop.example",
            "occurredOn": "2026-02-20",
            "stepsToTake": ["Be wary of emails asking for your password."],
        }
        sent = (await gql(BREACH, {"input": notice}, token=admin_token()))["sendBreachNotice"]
        assert sent["__typename"] == "BreachNoticeSent", sent
        assert (sent["systems"], sent["recipients"], sent["withoutAddress"]) == (["newsletter"], 1, 0)
        [message] = await smtp_inbox.wait_for(1)
        assert message["To"] == "b-1@example.com"
        text = text_of(message)
        assert "newsletter list was exposed" in text
        assert "dpo@shop.example" in text
        assert "2026-02-20" in text
        # The gateway's own records hold something of every subject it knows.
        everyone = {**notice, "dataCategories": [], "systems": ["gateway"]}
        sent = (await gql(BREACH, {"input": everyone}, token=admin_token()))["sendBreachNotice"]
        assert (sent["systems"], sent["recipients"]) == (["gateway"], 3)
        unknown = await gql(BREACH, {"input": {**everyone, "systems": ["nope"]}}, token=admin_token())
        assert unknown["sendBreachNotice"]["fields"][0]["field"] == "systems.0"
        denied = (await gql(BREACH, {"input": everyone}, token=agent_token()))["sendBreachNotice"]
        assert denied["__typename"] == "PermissionDeniedError"
        assert len(await outbox(gql, "BREACH_NOTICE")) == 4
