"""The `request.status_changed` webhook, queued in the unit of work of every workflow action."""

from __future__ import annotations

from datetime import datetime

from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.requests import RequestStatus
from dsr_gateway.domain.webhooks import WebhookEventType
from dsr_gateway.domain.workflow import RequestEvent
from dsr_gateway.services.ports import UnitOfWork


async def enqueue_status_changed(
    uow: UnitOfWork, request: PrivacyRequest, event: RequestEvent, previous: RequestStatus, now: datetime
) -> None:
    """Ids, statuses and dates only (never a contact detail); also for actions that keep the status
    (ASSIGN, EXTEND), so a receiver sees every step of the workflow."""
    payload: dict[str, object] = {
        "requestId": request.id,
        "action": event.action.value,
        "fromStatus": previous.value,
        "status": request.status.value,
        "type": request.type.value,
        "jurisdiction": request.jurisdiction.value,
        "subjectExternalId": request.subject_external_id,
        "dueAt": request.due_at.isoformat(),
        "occurredAt": now.isoformat(),
    }
    await uow.webhooks.enqueue(WebhookEventType.REQUEST_STATUS_CHANGED, payload, now)
