"""Outbox rows from templates: the one place a message to a subject is put together.

Every message is rendered when it is queued (in the transaction of the change it announces, or for a
consent change by the ledger's follower just after it), so the outbox holds exactly what is sent and
staff can read it. `template_data` keeps the variables, minus
secrets (a verification code is in the body only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.privacy_requests import OutboxStatus, mask_email
from dsr_gateway.services.comms.ports import Contact, LinkMaker, MessageRenderer
from dsr_gateway.services.ports import Cipher, NewMessage, UnitOfWork

SECRET_VARIABLES = frozenset({"code"})


@dataclass(frozen=True, slots=True)
class CommsConfig:
    """Settings of the communication area (read by app.py/cli.py from DSR_* and passed down)."""

    preferences_url: str | None = None
    notice_url: str | None = None
    reconfirm_link_days: int = 30
    campaign_min_interval: timedelta = timedelta(days=30)
    expiry_grace: timedelta = timedelta(days=14)
    supervisory_authority_name: str = "your data protection supervisory authority"
    supervisory_authority_url: str | None = None
    # Kinds sent with List-Unsubscribe headers: they are about a marketing purpose.
    marketing_kinds: frozenset[MessageKind] = field(
        default_factory=lambda: frozenset({MessageKind.RECONFIRMATION_REMINDER})
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Composer:
    def __init__(
        self, renderer: MessageRenderer, cipher: Cipher, links: LinkMaker, config: CommsConfig | None = None
    ) -> None:
        self.renderer = renderer
        self.cipher = cipher
        self.links = links
        self.config = config or CommsConfig()

    def compose(
        self,
        kind: MessageKind,
        context: Mapping[str, Any],
        *,
        email: str | None = None,
        email_encrypted: str | None = None,
        language: str | None = None,
        request_id: str | None = None,
        subject_id: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> NewMessage:
        """Render `kind` in the language (or its fallback) for one recipient; NO_ADDRESS without one."""
        rendered = self.renderer.render(kind, language, context)
        if email is not None and email_encrypted is None:
            email_encrypted = self.cipher.encrypt(email)
        elif email_encrypted is not None and email is None:
            email = self.cipher.decrypt(email_encrypted)
        data = {k: _jsonable(v) for k, v in context.items() if k not in SECRET_VARIABLES}
        return NewMessage(
            kind=kind.value,
            request_id=request_id,
            recipient_encrypted=email_encrypted,
            recipient_hint=mask_email(email) if email else None,
            subject_line=rendered.subject[:300],
            body=rendered.text,
            template_data=data,
            status=OutboxStatus.PENDING if email_encrypted else OutboxStatus.NO_ADDRESS,
            html=rendered.html,
            language=rendered.language,
            headers=headers if kind in self.config.marketing_kinds else None,
            subject_id=subject_id,
        )

    def to_contact(
        self, kind: MessageKind, context: Mapping[str, Any], contact: Contact | None, subject_id: int,
        headers: dict[str, str] | None = None,
    ) -> NewMessage:  # fmt: skip
        return self.compose(
            kind,
            context,
            email_encrypted=contact.email_encrypted if contact else None,
            language=contact.language if contact else None,
            subject_id=subject_id,
            headers=headers,
        )


async def language_of(uow: UnitOfWork, subject_id: int | None) -> str | None:
    """The language a subject asked us to write in, when we know the subject and they told us."""
    if subject_id is None:
        return None
    contact = (await uow.comms.contacts([subject_id])).get(subject_id)
    return contact.language if contact else None
