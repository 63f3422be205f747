"""Webhook subscriptions and deliveries as admins and staff see them (never the secret)."""

from __future__ import annotations

import base64
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from dsr_gateway.domain import webhooks
from dsr_gateway.domain.identifiers import parse_id
from dsr_gateway.graphql.types.pagination import PageInfo

# Served by member name (CONSENT_CHANGED ...); the value (consent.changed ...) is the X-DSR-Event header.
strawberry.enum(webhooks.WebhookEventType, description="An event other systems can subscribe to.")
strawberry.enum(webhooks.DeliveryStatus, name="WebhookDeliveryStatus")
WebhookEventType = webhooks.WebhookEventType
WebhookDeliveryStatus = webhooks.DeliveryStatus

CURSOR_PREFIX = "webhook-delivery:"


def delivery_cursor(delivery_id: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{delivery_id}".encode()).decode()


def delivery_id_from_cursor(cursor: str) -> int | None:
    """The delivery id in a cursor made by `delivery_cursor`, or None when it is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not text.startswith(CURSOR_PREFIX):
        return None
    return parse_id(text[len(CURSOR_PREFIX) :])


@strawberry.type(description="Where the gateway POSTs events, and which ones.")
class WebhookSubscription:
    id: strawberry.ID
    url: str
    events: list[WebhookEventType]
    description: str
    active: bool
    created_by: str
    created_at: datetime

    @classmethod
    def from_domain(cls, subscription: webhooks.WebhookSubscription) -> WebhookSubscription:
        return cls(
            id=strawberry.ID(str(subscription.id)),
            url=subscription.url,
            events=list(subscription.events),
            description=subscription.description,
            active=subscription.active,
            created_by=subscription.created_by,
            created_at=subscription.created_at,
        )


@strawberry.type(description="One event sent (or being sent) to one subscription, with its latest outcome.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Also sent as the X-DSR-Delivery header.")
    subscription_id: strawberry.ID
    event_id: str = strawberry.field(description="The event's id; a redelivery keeps it.")
    event_type: WebhookEventType
    payload: JSON
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    redelivery_of: strawberry.ID | None

    @classmethod
    def from_domain(cls, delivery: webhooks.WebhookDelivery) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(str(delivery.id)),
            subscription_id=strawberry.ID(str(delivery.subscription_id)),
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            payload=JSON(delivery.payload),
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            redelivery_of=strawberry.ID(str(delivery.redelivery_of)) if delivery.redelivery_of else None,
        )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type(description="A subscription's deliveries, newest first.")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo

    @classmethod
    def from_domain(cls, page: webhooks.DeliveryPage) -> WebhookDeliveryConnection:
        edges = [
            WebhookDeliveryEdge(cursor=delivery_cursor(d.id), node=WebhookDelivery.from_domain(d))
            for d in page.deliveries
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
            ),
        )
