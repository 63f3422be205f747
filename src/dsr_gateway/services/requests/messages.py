"""The emails the request workflow sends, rendered from templates as outbox rows (never sent from a use
case). Each takes the composer (templates, cipher, settings) and the request; the language is the
subject's where they told us one (`setContactDetails`), else English."""

from __future__ import annotations

from datetime import datetime

from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.privacy_requests import CODE_TTL, PrivacyRequest
from dsr_gateway.domain.requests import RejectionReason
from dsr_gateway.services.comms.compose import Composer
from dsr_gateway.services.ports import NewMessage


def _type(request: PrivacyRequest) -> str:
    return request.type.value.lower().replace("_", " ")


def verification_code_message(
    composer: Composer, request: PrivacyRequest, email: str, code: str, language: str | None = None
) -> NewMessage:
    minutes = int(CODE_TTL.total_seconds() // 60)
    context = {"request_type": _type(request), "code": code, "expires_in_minutes": minutes}
    return composer.compose(
        MessageKind.VERIFICATION_CODE, context, email=email, language=language, request_id=request.id
    )


def request_received(
    composer: Composer, request: PrivacyRequest, email: str | None, language: str | None = None
) -> NewMessage:
    context = {
        "request_reference": request.id,
        "request_type": _type(request),
        "received_on": request.received_at,
        "due_on": request.due_at,
        "status_url": None,
    }
    return composer.compose(
        MessageKind.REQUEST_RECEIVED, context, email=email, language=language, request_id=request.id
    )


def information_needed(
    composer: Composer, request: PrivacyRequest, email: str | None, question: str, clock_paused: bool,
    language: str | None = None,
) -> NewMessage:  # fmt: skip
    context = {
        "request_reference": request.id,
        "information_needed": question,
        "respond_url": None,
        "clock_paused": clock_paused,
    }
    return composer.compose(
        MessageKind.INFORMATION_NEEDED, context, email=email, language=language, request_id=request.id
    )


def extension_notice(
    composer: Composer, request: PrivacyRequest, email: str | None, new_due: datetime, reason: str,
    language: str | None = None,
) -> NewMessage:  # fmt: skip
    context = {
        "request_reference": request.id,
        "reason": reason,
        "original_due_on": request.due_at,
        "new_due_on": new_due,
    }
    return composer.compose(
        MessageKind.EXTENSION_NOTICE, context, email=email, language=language, request_id=request.id
    )


def completed(
    composer: Composer, request: PrivacyRequest, email: str | None, download_url: str | None = None,
    download_expires_on: datetime | None = None, language: str | None = None,
) -> NewMessage:  # fmt: skip
    context = {
        "request_reference": request.id,
        "request_type": _type(request),
        "download_url": download_url,
        "download_expires_on": download_expires_on,
    }
    return composer.compose(
        MessageKind.COMPLETED, context, email=email, language=language, request_id=request.id
    )


def rejected(
    composer: Composer, request: PrivacyRequest, email: str | None, reason: RejectionReason, message: str,
    language: str | None = None,
) -> NewMessage:  # fmt: skip
    config = composer.config
    context = {
        "request_reference": request.id,
        "reason": message,
        "supervisory_authority_name": config.supervisory_authority_name,
        "supervisory_authority_url": config.supervisory_authority_url,
    }
    new = composer.compose(
        MessageKind.REJECTED, context, email=email, language=language, request_id=request.id
    )
    new.template_data["reasonCode"] = RejectionReason(reason).value
    return new
