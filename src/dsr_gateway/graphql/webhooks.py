"""Root fields for webhooks: admins manage subscriptions and redeliver; staff read the delivery log."""

from __future__ import annotations

from typing import Annotated

import strawberry

from dsr_gateway.domain.access import require_admin
from dsr_gateway.domain.errors import DomainError, NotFound, ValidationFailed
from dsr_gateway.domain.identifiers import parse_id
from dsr_gateway.domain.webhooks import DeliveryPage
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_from_domain,
    query_error,
)
from dsr_gateway.graphql.permissions import IsAdmin, IsStaff
from dsr_gateway.graphql.types.webhooks import (
    WebhookDelivery,
    WebhookDeliveryConnection,
    WebhookEventType,
    WebhookSubscription,
    delivery_id_from_cursor,
)


def _int_id(info: Info, value: str, kind: str) -> int:
    """The numeric id behind an ID; admins only, checked first so that a denial reveals nothing."""
    require_admin(info.context.principal)
    number = parse_id(value)
    if number is None:
        raise NotFound(kind, value)
    return number


@strawberry.input(description="Where to POST which events. Leave `secret` out to have one generated.")
class CreateWebhookSubscriptionInput:
    url: str
    events: list[WebhookEventType]
    secret: str | None = strawberry.field(
        default=None, description="24-256 characters; the HMAC key of X-DSR-Signature. Shown back once."
    )
    description: str = ""


@strawberry.type
class CreateWebhookSubscriptionSuccess:
    subscription: WebhookSubscription
    secret: str = strawberry.field(description="The signing secret. Store it now: it is never shown again.")


@strawberry.type
class DeleteWebhookSubscriptionSuccess:
    id: strawberry.ID


@strawberry.type
class RedeliverWebhookSuccess:
    delivery: WebhookDelivery = strawberry.field(description="The new delivery, due now.")


CreateWebhookSubscriptionResult = Annotated[
    CreateWebhookSubscriptionSuccess | ValidationError | PermissionDeniedError,
    strawberry.union("CreateWebhookSubscriptionResult"),
]
DeleteWebhookSubscriptionResult = Annotated[
    DeleteWebhookSubscriptionSuccess | NotFoundError | PermissionDeniedError,
    strawberry.union("DeleteWebhookSubscriptionResult"),
]
RedeliverWebhookResult = Annotated[
    RedeliverWebhookSuccess | NotFoundError | PermissionDeniedError | ConflictError,
    strawberry.union("RedeliverWebhookResult"),
]


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Active webhook subscriptions (admin).", permission_classes=[IsAdmin])
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        subscriptions = await info.context.services.webhooks.subscriptions(info.context.principal)
        return [WebhookSubscription.from_domain(s) for s in subscriptions]

    @strawberry.field(
        description="A subscription's deliveries and their outcomes, newest first (staff).",
        permission_classes=[IsStaff],
    )
    async def webhook_deliveries(
        self, info: Info, subscription_id: strawberry.ID, first: int = 20, after: str | None = None
    ) -> WebhookDeliveryConnection:
        before_id = None
        if after is not None:
            before_id = delivery_id_from_cursor(after)
            if before_id is None:
                raise query_error(
                    ValidationFailed.single(
                        "after", "`after` is not a cursor from webhookDeliveries; pass an endCursor."
                    )
                )
        number = parse_id(str(subscription_id))
        if number is None:
            return WebhookDeliveryConnection.from_domain(DeliveryPage((), has_next_page=False))
        try:
            page = await info.context.services.webhooks.deliveries(
                info.context.principal, number, first, before_id
            )
        except DomainError as exc:
            raise query_error(exc) from exc
        return WebhookDeliveryConnection.from_domain(page)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Subscribe a URL to events (admin); returns the signing secret once.")
    async def create_webhook_subscription(
        self, info: Info, input: CreateWebhookSubscriptionInput
    ) -> CreateWebhookSubscriptionResult:
        try:
            created = await info.context.services.webhooks.create_subscription(
                info.context.principal, input.url, list(input.events), input.secret, input.description
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return CreateWebhookSubscriptionSuccess(
            subscription=WebhookSubscription.from_domain(created.subscription), secret=created.secret
        )

    @strawberry.mutation(description="Stop a subscription (admin); pending deliveries are given up.")
    async def delete_webhook_subscription(
        self, info: Info, id: strawberry.ID
    ) -> DeleteWebhookSubscriptionResult:
        try:
            await info.context.services.webhooks.delete_subscription(
                info.context.principal, _int_id(info, id, "webhook subscription")
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return DeleteWebhookSubscriptionSuccess(id=id)

    @strawberry.mutation(description="Send a delivery's event again, now, as a new delivery (admin).")
    async def redeliver_webhook(self, info: Info, delivery_id: strawberry.ID) -> RedeliverWebhookResult:
        try:
            delivery = await info.context.services.webhooks.redeliver(
                info.context.principal, _int_id(info, delivery_id, "webhook delivery")
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return RedeliverWebhookSuccess(delivery=WebhookDelivery.from_domain(delivery))
