"""The emails the request workflow sends, composed as outbox rows (never sent from a use case)."""

from __future__ import annotations

from datetime import datetime

from dsr_gateway.domain.privacy_requests import (
    CODE_TTL,
    MessageKind,
    OutboxStatus,
    PrivacyRequest,
    mask_email,
)
from dsr_gateway.services.ports import Cipher, NewMessage


def verification_code_message(cipher: Cipher, request: PrivacyRequest, email: str, code: str) -> NewMessage:
    minutes = int(CODE_TTL.total_seconds() // 60)
    body = (
        f"Your verification code is {code}\n\n"
        f"Enter it to confirm your {request.type.value.lower().replace('_', ' ')} request "
        f"(reference {request.id}). The code expires in {minutes} minutes.\n"
        "If you did not make this request, ignore this message."
    )
    return NewMessage(
        kind=MessageKind.VERIFICATION_CODE.value,
        request_id=request.id,
        recipient_encrypted=cipher.encrypt(email),
        recipient_hint=mask_email(email),
        subject_line=f"Your verification code: {code}",
        body=body,
        template_data={"requestId": request.id, "expiresInMinutes": minutes},
        status=OutboxStatus.PENDING,
    )


def extension_notice(
    cipher: Cipher, request: PrivacyRequest, email: str | None, new_due: datetime, reason: str
) -> NewMessage:
    body = (
        f"We need more time to answer your {request.type.value.lower().replace('_', ' ')} request "
        f"(reference {request.id}).\n\nReason: {reason}\n\n"
        f"We will answer by {new_due:%d %B %Y}. You may complain to your data protection authority."
    )
    return NewMessage(
        kind=MessageKind.EXTENSION_NOTICE.value,
        request_id=request.id,
        recipient_encrypted=cipher.encrypt(email) if email else None,
        recipient_hint=mask_email(email) if email else None,
        subject_line="We need more time to answer your request",
        body=body,
        template_data={"requestId": request.id, "dueAt": new_due.isoformat(), "reason": reason},
        status=OutboxStatus.PENDING if email else OutboxStatus.NO_ADDRESS,
    )


def completion_notice(
    cipher: Cipher,
    request: PrivacyRequest,
    email: str | None,
    download_url: str | None = None,
    link_expires_at: datetime | None = None,
) -> NewMessage:
    """The subject is told the request is done; an access or portability answer carries its link."""
    kind = request.type.value.lower().replace("_", " ")
    body = f"Your {kind} request (reference {request.id}) is complete.\n"
    data: dict[str, object] = {"requestId": request.id, "type": request.type.value}
    if download_url:
        until = f" until {link_expires_at:%d %B %Y}" if link_expires_at else ""
        body += f"\nDownload your data{until}:\n{download_url}\n"
        data["downloadUrl"] = download_url
        if link_expires_at:
            data["linkExpiresAt"] = link_expires_at.isoformat()
    body += (
        "\nIf something is missing or wrong, reply to this message. "
        "You may complain to your data protection authority."
    )
    return NewMessage(
        kind=MessageKind.REQUEST_COMPLETED.value,
        request_id=request.id,
        recipient_encrypted=cipher.encrypt(email) if email else None,
        recipient_hint=mask_email(email) if email else None,
        subject_line="Your privacy request is complete",
        body=body,
        template_data=data,
        status=OutboxStatus.PENDING if email else OutboxStatus.NO_ADDRESS,
    )
