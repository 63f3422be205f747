"""An anonymous request verified with the code read from a real SMTP server, sent by the worker loop."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import Message

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from tests.support.app import GraphQLClient, agent_token, make_settings
from tests.support.request_factories import GET, OUTBOX, VERIFY, submit
from tests.support.smtp import Inbox, smtp_inbox

__all__ = ["smtp_inbox"]


@pytest.fixture
async def mailing_gql(database_url: str, smtp_inbox: Inbox) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(
        database_url,
        smtp_host=smtp_inbox.host,
        smtp_port=smtp_inbox.port,
        smtp_starttls=False,
        smtp_from="privacy@shop.example",
        worker_in_process=True,
        outbox_poll_seconds=0.05,
        sla_sweep_seconds=3600,
    )
    application = create_app(settings)
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        yield GraphQLClient(http, application)


async def test_anonymous_request_verified_with_the_code_from_the_email(
    mailing_gql: GraphQLClient, smtp_inbox: Inbox
) -> None:
    gql = mailing_gql
    submitted = await submit(gql, None, email="Zoe@Example.com", jurisdiction="CCPA")
    request = submitted["request"]
    assert submitted["verificationRequired"] is True
    assert request["status"] == "AWAITING_VERIFICATION"
    assert request["subject"] is None

    [message] = await smtp_inbox.wait_for(1)
    assert message["To"] == "zoe@example.com"
    assert message["From"] == "privacy@shop.example"
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part_of(message, kind) for kind in ("text/plain", "text/html"))
    code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    assert code in html
    assert "<html" in html
    assert message["Subject"] == f"Your verification code: {code}"
    assert message["List-Unsubscribe"] is None  # not a marketing message

    wrong = "000000" if code != "000000" else "111111"
    refused = (await gql(VERIFY, {"id": request["id"], "code": wrong}))["verifyPrivacyRequest"]
    assert refused["__typename"] == "ValidationError"
    assert "4 attempts left" in refused["message"]
    verified = (await gql(VERIFY, {"id": request["id"], "code": code}))["verifyPrivacyRequest"]
    assert verified["__typename"] == "PrivacyRequestSuccess", verified
    assert verified["request"]["status"] == "SUBMITTED"

    staff_view = (await gql(GET, {"id": request["id"]}, token=agent_token()))["privacyRequest"]
    assert staff_view["contact"] == "z***@e***.com"
    assert [(h["action"], h["toStatus"]) for h in staff_view["history"]] == [("VERIFY", "SUBMITTED")]
    # CCPA: the clock started at receipt regardless of verification.
    assert staff_view["dueAt"] == request["dueAt"]
    assert staff_view["slaRule"]["inputs"]["received_at"] == request["slaRule"]["inputs"]["received_at"]
    outbox = (await gql(OUTBOX, {"requestId": request["id"]}, token=agent_token()))["outboxMessages"]
    [sent] = [m for m in outbox if m["kind"] == "VERIFICATION_CODE"]
    assert sent["status"] == "SENT"
    assert sent["deliveries"][0]["succeeded"] is True
    # Once verified, the acknowledgement follows, from its template.
    ack = [m for m in outbox if m["kind"] == "REQUEST_RECEIVED"]
    assert len(ack) == 1
    assert request["id"] in ack[0]["body"]
    assert "zoe@example.com" not in str(outbox)


def part_of(message: Message, content_type: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == content_type)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


async def test_the_outbox_is_staff_only(mailing_gql: GraphQLClient) -> None:
    response = await mailing_gql.post(OUTBOX, {})
    assert response.json()["errors"][0]["message"].startswith("Only staff")


async def test_a_uk_gdpr_clock_starts_again_when_the_identity_is_verified(
    mailing_gql: GraphQLClient, smtp_inbox: Inbox
) -> None:
    # UK GDPR Art. 12A: the latest of receipt and receipt of the requested ID (the rule says so:
    # starts_at_verification); CCPA's keeps its start (the test above).
    gql = mailing_gql
    submitted = (await submit(gql, None, email="uma@example.com", jurisdiction="UK_GDPR"))["request"]
    [message] = await smtp_inbox.wait_for(1)
    code = re.search(r"\b(\d{6})\b", part_of(message, "text/plain")).group(1)  # type: ignore[union-attr]
    verified = (await gql(VERIFY, {"id": submitted["id"], "code": code}))["verifyPrivacyRequest"]
    assert verified["__typename"] == "PrivacyRequestSuccess", verified
    staff_view = (await gql(GET, {"id": submitted["id"]}, token=agent_token()))["privacyRequest"]
    before = submitted["slaRule"]["inputs"]["received_at"]
    after = staff_view["slaRule"]["inputs"]["received_at"]
    assert after > before
    assert staff_view["slaRule"]["id"] == "UK_GDPR-12A/v1"
