"""Email over SMTP with aiosmtplib: the `Mailer` port. A refused recipient is a permanent failure.

With an HTML part the message is `multipart/alternative` (plain text first, as RFC 2046 orders them).
Extra headers (`List-Unsubscribe`, `List-Unsubscribe-Post` on marketing messages) are added as given;
only those names are accepted, so a template or a caller can never set `Bcc` or a second `To`.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import aiosmtplib

from dsr_gateway.domain.privacy_requests import mask_email
from dsr_gateway.services.ports import DeliveryFailed

EXTRA_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post"})
# Lines up to RFC 5322's 998 characters: a long signed link in List-Unsubscribe must stay one unbroken
# <URL>, never be folded into RFC 2047 encoded words that mail providers cannot follow.
POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str | None
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    use_tls: bool = False
    sender: str = "privacy@localhost"
    timeout: float = 30.0


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    @property
    def configured(self) -> bool:
        return bool(self._config.host)

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        config = self._config
        message = EmailMessage(policy=POLICY)
        message["From"] = config.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=config.sender.partition("@")[2] or None)
        for name, value in (headers or {}).items():
            if name not in EXTRA_HEADERS:
                raise DeliveryFailed(f"header {name!r} may not be set on a message", permanent=True)
            message[name] = value
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        try:
            # Flattened here, with our policy: aiosmtplib would re-fold headers at 78 characters.
            errors, response = await aiosmtplib.send(
                message.as_bytes(policy=POLICY),
                sender=parseaddr(config.sender)[1] or config.sender,
                recipients=[to],
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                start_tls=config.starttls and not config.use_tls,
                use_tls=config.use_tls,
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(_redact(f"recipient refused: {exc}", to), permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(_redact(f"{type(exc).__name__}: {exc}", to)) from exc
        if errors:
            raise DeliveryFailed(_redact(f"recipient refused: {errors}", to), permanent=True)
        return response


def _redact(detail: str, to: str) -> str:
    """The failure text is logged and shown to staff as lastError: the address only masked in it."""
    return re.sub(re.escape(to), mask_email(to), detail, flags=re.IGNORECASE)
