"""The Protocols of the communication area: templates, signed links, and its repository."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dsr_gateway.domain.messages import MessageKind, RenderedMessage
from dsr_gateway.domain.unsubscribe import ReconfirmClaims, UnsubscribeClaims


class MessageRenderer(Protocol):
    """connectors.templates.MessageTemplates."""

    def render(
        self, kind: MessageKind, language: str | None, context: Mapping[str, Any]
    ) -> RenderedMessage: ...


class LinkMaker(Protocol):
    """connectors.link_signing.UnsubscribeLinks: absolute signed links and RFC 8058 headers."""

    def unsubscribe_url(self, claims: UnsubscribeClaims, expires_at: datetime | None = None) -> str: ...
    def reconfirm_url(self, claims: ReconfirmClaims, expires_at: datetime | None = None) -> str: ...
    def headers(self, claims: UnsubscribeClaims, mailto: str | None = None) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class Contact:
    """Where to write to a subject: an encrypted address (None: unknown) and a language (None: unknown)."""

    subject_id: int
    external_id: str
    email_encrypted: str | None
    language: str | None


@dataclass(frozen=True, slots=True)
class DueConsent:
    """A granted consent of a purpose that falls due for reconfirmation (or lapses) at `due_at`."""

    subject_id: int
    external_id: str
    purpose: str
    topic: str
    channel: str
    given_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class GpcSignal:
    purpose: str
    event_id: int | None
    conflict: bool
    granted_at: datetime | None
    recorded_at: datetime


class CommsRepository(Protocol):
    async def contacts(self, subject_ids: Collection[int]) -> dict[int, Contact]: ...
    async def set_contact(
        self, subject_id: int, email_encrypted: str | None, hint: str | None, language: str | None,
        now: datetime,
    ) -> None: ...  # fmt: skip
    async def granted_given_before(
        self, purpose: str, given_before: datetime, after: tuple[datetime, int, str, str] | None, limit: int
    ) -> list[tuple[int, str, str, str, datetime]]: ...
    async def recently_sent(
        self, purpose: str, subject_ids: Collection[int], since: datetime
    ) -> set[int]: ...
    async def record_sends(
        self, campaign: str, purpose: str, sends: Sequence[tuple[int, int]], now: datetime
    ) -> None: ...
    async def subjects_with_consent(
        self, purposes: Collection[str] | None, after_subject_id: int, limit: int
    ) -> list[tuple[int, str, list[str]]]: ...
    async def gpc_signals(self, subject_ids: Collection[int]) -> dict[int, list[GpcSignal]]: ...
    async def add_gpc_signals(self, subject_id: int, signals: Sequence[GpcSignal]) -> None: ...
    async def subjects_with_records(
        self, purposes: Collection[str], after_subject_id: int, limit: int
    ) -> list[int]: ...
    async def subjects_page(self, after_subject_id: int, limit: int) -> list[tuple[int, str]]: ...
    async def add_breach(
        self, systems: Sequence[str], categories: Sequence[str], details: dict[str, Any], created_by: str,
        now: datetime,
    ) -> int: ...  # fmt: skip
    async def record_breach_recipients(
        self, breach_id: int, sends: Sequence[tuple[int, int]], now: datetime
    ) -> None: ...
    async def breach_recipient_count(self, breach_id: int) -> int: ...
