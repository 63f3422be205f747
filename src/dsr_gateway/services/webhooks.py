"""Use cases for webhooks: admins manage subscriptions and redeliver; changes enqueue deliveries.

`enqueue_webhook(uow, ...)` is not a use case of its own: the use case that makes a change calls it with
its own unit of work, before its commit, so a delivery exists exactly when the change does.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsr_gateway.domain.access import require_admin, require_staff
from dsr_gateway.domain.errors import Conflict, NotFound, ValidationFailed
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.webhooks import (
    DeliveryPage,
    WebhookDelivery,
    WebhookEventType,
    WebhookSubscription,
    validate_subscription,
)
from dsr_gateway.services.ports import Clock, SecretCipher, UnitOfWork, UnitOfWorkFactory

PAGE_MAX = 100
GENERATED_SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)


@dataclass(frozen=True, slots=True)
class CreatedSubscription:
    subscription: WebhookSubscription
    # Shown once, to the admin who created it; only its encryption is stored.
    secret: str


async def enqueue_webhook(
    uow: UnitOfWork, clock: Clock, event_type: WebhookEventType, payload: Mapping[str, Any]
) -> list[int]:
    """Queue `event_type` for every subscription that wants it, inside the caller's transaction.

    `payload` must be JSON-ready (str, int, float, bool, None, lists and dicts of them) and should name
    subjects by external id only, never by email. Returns the ids of the deliveries queued.
    """
    return await uow.webhooks.enqueue(event_type, dict(payload), clock())


class WebhookService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        cipher: SecretCipher,
        *,
        allow_plain_http: bool,
        allow_private_addresses: bool = True,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cipher = cipher
        self._allow_plain_http = allow_plain_http
        self._allow_private_addresses = allow_private_addresses

    async def create_subscription(
        self,
        principal: Principal,
        url: str,
        events: Sequence[WebhookEventType],
        secret: str | None = None,
        description: str = "",
    ) -> CreatedSubscription:
        require_admin(principal)
        validate_subscription(
            url,
            events,
            secret,
            allow_plain_http=self._allow_plain_http,
            allow_private_addresses=self._allow_private_addresses,
        )
        if len(description) > 500:
            raise ValidationFailed.single("description", "must be at most 500 characters")
        secret = secret or GENERATED_SECRET_PREFIX + secrets.token_urlsafe(32)
        async with self._uow() as uow:
            subscription = await uow.webhooks.add_subscription(
                url.strip(),
                events,
                self._cipher.encrypt(secret),
                description,
                principal.actor_label,
                self._clock(),
            )
            await uow.commit()
        return CreatedSubscription(subscription, secret)

    async def delete_subscription(self, principal: Principal, subscription_id: int) -> None:
        """Stop deliveries to it; its delivery log stays readable."""
        require_admin(principal)
        async with self._uow() as uow:
            if not await uow.webhooks.deactivate_subscription(subscription_id):
                raise NotFound("webhook subscription", str(subscription_id))
            await uow.commit()

    async def subscriptions(self, principal: Principal) -> Sequence[WebhookSubscription]:
        require_admin(principal)
        async with self._uow() as uow:
            return await uow.webhooks.active_subscriptions()

    async def deliveries(
        self, principal: Principal, subscription_id: int, first: int, before_id: int | None
    ) -> DeliveryPage:
        require_staff(principal)
        if not 1 <= first <= PAGE_MAX:
            raise ValidationFailed.single("first", f"must be between 1 and {PAGE_MAX}")
        async with self._uow() as uow:
            return await uow.webhooks.deliveries(subscription_id, first, before_id)

    async def redeliver(self, principal: Principal, delivery_id: int) -> WebhookDelivery:
        """Send the same event again as a new delivery, now; the original and its outcome stay logged."""
        require_admin(principal)
        async with self._uow() as uow:
            original = await uow.webhooks.get_delivery(delivery_id)
            if original is None:
                raise NotFound("webhook delivery", str(delivery_id))
            subscription = await uow.webhooks.get_subscription(original.subscription_id)
            if subscription is None or not subscription.active:
                raise Conflict(
                    "The subscription of this delivery was deleted; subscribe again to receive its events."
                )
            delivery = await uow.webhooks.add_redelivery(original, self._clock())
            await uow.commit()
        return delivery
