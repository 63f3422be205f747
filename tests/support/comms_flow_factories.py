"""The app with a real SMTP server, a real webhook receiver and fast worker loops, and GraphQL for the
communication flows (reviews, links, GPC, notices, breach notices, contact details)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from tests.support.app import GraphQLClient, make_settings
from tests.support.smtp import Inbox

SET_CONTACT = """
mutation($input: SetContactDetailsInput!) {
  setContactDetails(input: $input) {
    __typename ... on ContactDetailsSaved { subjectId email language } ... on UserError { message }
  }
}
"""
DUE = """
query($purpose: String!, $dueBefore: DateTime!, $first: Int, $after: String) {
  consentsDueForReview(purpose: $purpose, dueBefore: $dueBefore, first: $first, after: $after) {
    edges { cursor node { subjectId purpose topic channel givenAt dueAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CAMPAIGN = """
mutation($purpose: String!, $days: Int!) {
  startReconfirmationCampaign(purpose: $purpose, dueWithinDays: $days) {
    __typename
    ... on CampaignStarted { purpose dueSubjects queued noAddress skippedRecentlySent }
    ... on UserError { message }
  }
}
"""
LINK = """
query($subjectId: String!, $purpose: String!, $topic: String, $channel: Channel) {
  unsubscribeLink(subjectId: $subjectId, purpose: $purpose, topic: $topic, channel: $channel) {
    url listUnsubscribe listUnsubscribePost
  }
}
"""
BREACH = """
mutation($input: SendBreachNoticeInput!) {
  sendBreachNotice(input: $input) {
    __typename
    ... on BreachNoticeSent { breachId systems recipients withoutAddress }
    ... on UserError { message }
    ... on ValidationError { fields { field message } }
  }
}
"""
GPC_CONFLICTS = (
    "{ me { gpcConflicts { purpose grantedAt recordedAt note } consents { purpose state reason } } }"
)
OUTBOX_ALL = "{ outboxMessages(first: 200) { id kind recipient subjectLine body status } }"
SUBSCRIBE = """
mutation($url: String!, $events: [WebhookEventType!]!) {
  createWebhookSubscription(input: {url: $url, events: $events, secret: "s3cret-for-the-tests-0123456789"}) {
    __typename ... on CreateWebhookSubscriptionSuccess { secret subscription { id } }
  }
}
"""
WEBHOOK_SECRET = "s3cret-for-the-tests-0123456789"


@asynccontextmanager
async def comms_app(database_url: str, inbox: Inbox, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    values: dict[str, Any] = {
        "smtp_host": inbox.host,
        "smtp_port": inbox.port,
        "smtp_starttls": False,
        "smtp_from": "privacy@shop.example",
        "worker_in_process": True,
        "outbox_poll_seconds": 0.05,
        "webhook_poll_seconds": 0.05,
        "sla_sweep_seconds": 3600,
        "consent_expiry_sweep_seconds": 3600,
        "preferences_url": "https://shop.example/account/privacy",
    }
    values.update(overrides)
    application = create_app(make_settings(database_url, **values))
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        yield GraphQLClient(http, application)


def text_of(message: Message, content_type: str = "text/plain") -> str:
    part = next(p for p in message.walk() if p.get_content_type() == content_type)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def link_in(text: str, path: str) -> str:
    match = re.search(rf"(http://testserver/{path}/[A-Za-z0-9_\-%]+)", text)
    assert match is not None, text
    return match.group(1)


def to_path(url: str) -> str:
    return url.removeprefix("http://testserver")


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Poll `check` until true (a background loop does the work); fail after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - the work happens in the app's own loops
            await asyncio.sleep(0.05)


def messages_to(inbox: Inbox, address: str, subject_part: str) -> list[Message]:
    return [m for m in inbox.messages if m["To"] == address and subject_part in str(m["Subject"])]


def write_systems_file(directory: Path) -> Path:
    path = directory / "systems.toml"
    path.write_text(
        f"""
[systems.gateway]
kind = "gateway"
data_categories = ["consent"]

[systems.newsletter]
kind = "sql"
url = "sqlite+aiosqlite:///{directory}/newsletter.db"
data_categories = ["contact", "newsletter_history"]
purposes = ["marketing_email"]

[systems.newsletter.tables.subscribers]
identifiers = {{ external_id = "customer_ref" }}
fields = {{ opened = {{ category = "newsletter_history" }} }}
"""
    )
    return path
