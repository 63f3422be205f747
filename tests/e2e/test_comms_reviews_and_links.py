"""Reviews and one-click links end to end: due list, campaign, the reminder read from a real SMTP server,
reconfirm and unsubscribe links (forged, moved, expired, wrong type refused), unsubscribeLink for clients."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

from dsr_gateway.connectors.link_signing import LinkSigner
from dsr_gateway.domain.unsubscribe import ReconfirmClaims, UnsubscribeClaims
from tests.support.app import GraphQLClient, admin_token, agent_token, client_token, subject_token
from tests.support.comms_flow_factories import (
    CAMPAIGN,
    DUE,
    LINK,
    SET_CONTACT,
    comms_app,
    link_in,
    text_of,
    to_path,
)
from tests.support.consent_factories import EVENTS, check, choice, seed_catalogue, set_consents
from tests.support.smtp import Inbox, smtp_inbox

__all__ = ["smtp_inbox"]
SIGNER = LinkSigner({1: "test-hmac-key-0123456789abcdef0123456789abcdef"}, 1)
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}
READER = client_token("consent:read")


def moved(token: str, old: bytes, new: bytes) -> str:
    """The same token with the subject changed in its claims (same length), signature left as it was."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return base64.urlsafe_b64encode(raw.replace(old, new, 1)).rstrip(b"=").decode()


async def actions(gql: object, subject: str) -> list[tuple[str, str]]:
    data = await gql(EVENTS, {"subjectId": subject, "first": 50}, token=agent_token())  # type: ignore[operator]
    return [(e["node"]["action"], e["node"]["method"]) for e in data["consentEvents"]["edges"]]


async def test_campaign_reminder_reconfirm_and_one_click_unsubscribe(
    database_url: str, smtp_inbox: Inbox
) -> None:
    async with comms_app(database_url, smtp_inbox) as gql:
        await seed_catalogue(gql)
        for who in ("c-1", "c-2"):
            saved = (
                await gql(SET_CONTACT, {"input": {"email": f"{who}@Example.com", "language": "de-AT"}},
                          token=subject_token(who))
            )["setContactDetails"]  # fmt: skip
            assert saved["email"] == "c***@e***.com"  # masked
            assert (saved["subjectId"], saved["language"]) == (who, "de-AT")
            assert (await set_consents(gql, choice(), token=subject_token(who)))[
                "__typename"
            ] == "SetConsentsSuccess"

        # Due for review: marketing_email is reconfirmed every 365 days.
        now = datetime.now(UTC)
        soon = {"purpose": "marketing_email", "dueBefore": (now + timedelta(days=366)).isoformat()}
        first = (await gql(DUE, {**soon, "first": 1}, token=agent_token()))["consentsDueForReview"]
        assert [e["node"]["subjectId"] for e in first["edges"]] == ["c-1"]
        assert first["pageInfo"]["hasNextPage"] is True
        rest = await gql(DUE, {**soon, "after": first["pageInfo"]["endCursor"]}, token=agent_token())
        assert [e["node"]["subjectId"] for e in rest["consentsDueForReview"]["edges"]] == ["c-2"]
        later = {"purpose": "marketing_email", "dueBefore": (now + timedelta(days=300)).isoformat()}
        assert (await gql(DUE, later, token=agent_token()))["consentsDueForReview"]["edges"] == []
        denied = await gql.post(DUE, soon, token=subject_token("c-1"))
        assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        # The campaign, twice: the second run messages nobody (DSR_CAMPAIGN_MIN_INTERVAL_DAYS).
        started = await gql(CAMPAIGN, {"purpose": "marketing_email", "days": 366}, token=admin_token())
        assert started["startReconfirmationCampaign"] == {
            "__typename": "CampaignStarted", "purpose": "marketing_email", "dueSubjects": 2, "queued": 2,
            "noAddress": 0, "skippedRecentlySent": 0,
        }  # fmt: skip
        again = await gql(CAMPAIGN, {"purpose": "marketing_email", "days": 366}, token=admin_token())
        assert again["startReconfirmationCampaign"]["queued"] == 0
        assert again["startReconfirmationCampaign"]["skippedRecentlySent"] == 2
        by_agent = await gql(CAMPAIGN, {"purpose": "marketing_email", "days": 366}, token=agent_token())
        assert by_agent["startReconfirmationCampaign"]["__typename"] == "PermissionDeniedError"

        await smtp_inbox.wait_for(2)
        [reminder] = [m for m in smtp_inbox.messages if m["To"] == "c-1@example.com"]
        assert reminder.get_content_type() == "multipart/alternative"
        assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe_url = "".join(str(reminder["List-Unsubscribe"]).split()).strip("<>")  # unfolded
        text = text_of(reminder)
        assert "Marketing emails" in text
        assert "<a " in text_of(reminder, "text/html")
        reconfirm_url = link_in(text, "reconfirm")

        # Reconfirm: a GET only shows the button; the POST records RECONFIRM, no sign-in.
        page = await gql.http.get(to_path(reconfirm_url))
        assert page.status_code == 200
        assert '<form method="post">' in page.text
        assert (await actions(gql, "c-1"))[0] == ("GRANT", "CHECKBOX")
        done = await gql.http.post(to_path(reconfirm_url))
        assert done.status_code == 200, done.text
        assert (await actions(gql, "c-1"))[0] == ("RECONFIRM", "BUTTON")

        token = reconfirm_url.rsplit("/", 1)[1]
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert (await gql.http.post(f"/reconfirm/{forged}")).status_code == 404
        assert (await gql.http.post(f"/reconfirm/{moved(token, b'c-1', b'c-2')}")).status_code == 404
        expired = SIGNER.reconfirm_token(ReconfirmClaims("c-1", "marketing_email"), now - timedelta(days=1))
        assert (await gql.http.post(f"/reconfirm/{expired}")).status_code == 400
        unsubscribe_token = unsubscribe_url.rsplit("/", 1)[1]
        assert (await gql.http.post(f"/reconfirm/{unsubscribe_token}")).status_code == 400  # wrong type

        # One click (RFC 8058) withdraws; a second click changes nothing.
        for _ in range(2):
            posted = await gql.http.post(
                to_path(unsubscribe_url), content="List-Unsubscribe=One-Click", headers=ONE_CLICK
            )
            assert posted.status_code == 200, posted.text
        assert await check(gql, ["c-1", "c-2"], READER) == [
            {"subjectId": "c-1", "allowed": False, "reason": "WITHDRAWN"},
            {"subjectId": "c-2", "allowed": True, "reason": "GRANTED"},
        ]
        assert [a for a in await actions(gql, "c-1") if a[0] == "WITHDRAW"] == [
            ("WITHDRAW", "UNSUBSCRIBE_LINK")
        ]
        for bad, status in (
            (moved(unsubscribe_token, b"c-1", b"c-2"), 404),
            (
                SIGNER.unsubscribe_token(
                    UnsubscribeClaims("c-2", "marketing_email"), now - timedelta(seconds=1)
                ),
                400,
            ),
            (SIGNER.reconfirm_token(ReconfirmClaims("c-2", "marketing_email")), 400),
        ):
            refused = await gql.http.post(
                f"/unsubscribe/{bad}", content="List-Unsubscribe=One-Click", headers=ONE_CLICK
            )
            assert refused.status_code == status
        assert (await check(gql, ["c-2"], READER))[0]["allowed"] is True


async def test_api_clients_get_links_and_headers_for_their_own_emails(
    database_url: str, smtp_inbox: Inbox
) -> None:
    async with comms_app(database_url, smtp_inbox) as gql:
        await seed_catalogue(gql)
        await set_consents(gql, choice(), token=subject_token("c-2"))
        variables = {
            "subjectId": "c-2",
            "purpose": "marketing_email",
            "topic": "promotions",
            "channel": "EMAIL",
        }
        link = (await gql(LINK, variables, token=READER))["unsubscribeLink"]
        assert link["listUnsubscribe"] == f"<{link['url']}>"
        assert link["listUnsubscribePost"] == "List-Unsubscribe=One-Click"
        posted = await gql.http.post(
            to_path(link["url"]), content="List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
        assert posted.status_code == 200
        promotions = await check(gql, ["c-2"], READER, topic="promotions", channel="EMAIL")
        assert promotions[0]["reason"] == "WITHDRAWN"
        assert (await check(gql, ["c-2"], READER, topic="product_updates"))[0]["allowed"] is True
        for variables_, token, code in (
            (variables, subject_token("c-2"), "FORBIDDEN"),
            ({**variables, "topic": "nope"}, READER, "BAD_USER_INPUT"),
            ({**variables, "purpose": "nope"}, READER, "NOT_FOUND"),
        ):
            errors = (await gql.post(LINK, variables_, token=token)).json()["errors"]
            assert errors[0]["extensions"]["code"] == code


async def test_two_clicks_at_once_on_an_unsubscribe_link_record_one_withdrawal(gql: GraphQLClient) -> None:
    # The "already withdrawn" check runs under the subject's lock, in the withdrawal's own transaction:
    # two clicks racing each other cannot both see the grant.
    await seed_catalogue(gql)
    await set_consents(gql, choice(), token=subject_token("racer"))
    token = SIGNER.unsubscribe_token(
        UnsubscribeClaims("racer", "marketing_email"), datetime.now(UTC) + timedelta(days=1)
    )
    posts = [
        gql.http.post(f"/unsubscribe/{token}", content="List-Unsubscribe=One-Click", headers=ONE_CLICK)
        for _ in range(3)
    ]
    for posted in await asyncio.gather(*posts):
        assert posted.status_code == 200, posted.text
    assert [a for a in await actions(gql, "racer") if a[0] == "WITHDRAW"] == [
        ("WITHDRAW", "UNSUBSCRIBE_LINK")
    ]
    assert (await check(gql, ["racer"], READER))[0]["reason"] == "WITHDRAWN"
