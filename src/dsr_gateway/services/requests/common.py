"""What every request use case shares: who the actor is, who may see a request, what gets published."""

from __future__ import annotations

from datetime import datetime

from dsr_gateway.domain.errors import NotFound, PermissionDenied
from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.domain.privacy_requests import PrivacyRequest
from dsr_gateway.domain.workflow import ActorRole, RequestEvent
from dsr_gateway.services.ports import Cipher, EventBus, UnitOfWork

REQUEST_CHANNEL = "privacy_requests"
SLA_ALERT_CHANNEL = "sla_alerts"


def may_see(principal: Principal, request: PrivacyRequest) -> bool:
    """Staff see every request; a subject only their own. Nobody else sees any."""
    if principal.is_staff:
        return True
    return request.subject_external_id is not None and principal.is_subject(request.subject_external_id)


def not_found(request_id: str) -> NotFound:
    # The same answer for "does not exist" and "not yours": a denial never reveals existence.
    return NotFound("privacy request", request_id)


def actor_role(principal: Principal, request: PrivacyRequest) -> ActorRole:
    """The workflow role of this caller on this request; NotFound when they may not see it."""
    if principal.kind is PrincipalKind.SYSTEM:
        return ActorRole.SYSTEM
    if principal.is_admin:
        return ActorRole.ADMIN
    if principal.is_staff and Role.AGENT in principal.roles:
        return ActorRole.AGENT
    if may_see(principal, request):
        return ActorRole.SUBJECT
    if principal.kind is PrincipalKind.API_CLIENT:
        raise PermissionDenied("API clients may not act on privacy requests.")
    raise not_found(request.id)


async def email_of(uow: UnitOfWork, cipher: Cipher, request: PrivacyRequest) -> str | None:
    """The requester's email address in clear, when one is on file."""
    if request.identity_id is None:
        return None
    identity = (await uow.identities.many([request.identity_id])).get(request.identity_id)
    if identity is None or identity.email_encrypted is None:
        return None
    return cipher.decrypt(identity.email_encrypted)


async def publish_event(events: EventBus, request: PrivacyRequest, event: RequestEvent) -> None:
    await events.publish(REQUEST_CHANNEL, event_payload(request, event.action.value, event.occurred_at))


def event_payload(request: PrivacyRequest, action: str, at: datetime) -> dict[str, object]:
    """Ids and statuses only: subscribers load the request through the visibility check."""
    return {
        "requestId": request.id,
        "action": action,
        "status": request.status.value,
        "subjectExternalId": request.subject_external_id,
        "occurredAt": at.isoformat(),
    }
