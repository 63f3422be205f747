"""Webhook subscriptions and deliveries: rows <-> domain objects, the enqueue and the sender's claim."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import event, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import DriverStatement
from dsr_gateway.db.repositories.process_caches import (
    cached_subscriptions,
    caches_for,
    forget_subscriptions,
    remember_subscriptions,
)
from dsr_gateway.db.tables.webhooks import WebhookDeliveryRow, WebhookSubscriptionRow
from dsr_gateway.domain.webhooks import (
    DeliveryPage,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEventType,
    WebhookSubscription,
)

ERROR_MAX = 500
CACHED_EVENTS = frozenset({WebhookEventType.CONSENT_CHANGED})
SUBSCRIPTIONS = WebhookSubscriptionRow.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDeliveryRow.__table__  # type: ignore[attr-defined]
ACTIVE_SUBSCRIPTIONS = DriverStatement(
    select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.active.is_(True)).order_by(SUBSCRIPTIONS.c.id)
)
INSERT_DELIVERY = DriverStatement(DELIVERIES.insert().returning(DELIVERIES.c.id))


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery the sender now holds, with what it needs to send it."""

    delivery: WebhookDelivery
    url: str
    secret_encrypted: str
    subscription_active: bool


def _subscription(row: WebhookSubscriptionRow) -> WebhookSubscription:
    assert row.id is not None
    return WebhookSubscription(
        id=row.id,
        url=row.url,
        events=tuple(WebhookEventType(e) for e in row.events),
        active=row.active,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _delivery(row: WebhookDeliveryRow) -> WebhookDelivery:
    assert row.id is not None
    return WebhookDelivery(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=WebhookEventType(row.event_type),
        payload=row.payload,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        redelivery_of=row.redelivery_of,
    )


class SqlWebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._caches = caches_for(session.bind)

    def _subscriptions_changed(self) -> None:
        """Drop the cached active subscriptions now, and again when this transaction ends (another
        request may have re-read them in between without seeing this uncommitted change)."""
        forget_subscriptions(self._caches)
        sync_session = self._session.sync_session
        for name in ("after_commit", "after_rollback"):
            if not event.contains(sync_session, name, self._forget):
                event.listen(sync_session, name, self._forget, once=True)

    def _forget(self, _session: Any) -> None:
        forget_subscriptions(self._caches)

    # --- subscriptions ---------------------------------------------------------------------------

    async def add_subscription(
        self,
        url: str,
        events: Sequence[WebhookEventType],
        secret_encrypted: str,
        description: str,
        created_by: str,
        now: datetime,
    ) -> WebhookSubscription:
        row = WebhookSubscriptionRow(
            url=url,
            events=[e.value for e in events],
            secret_encrypted=secret_encrypted,
            description=description,
            created_by=created_by,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        self._subscriptions_changed()
        return _subscription(row)

    async def get_subscription(self, subscription_id: int) -> WebhookSubscription | None:
        row = await self._session.get(WebhookSubscriptionRow, subscription_id)
        return _subscription(row) if row else None

    async def active_subscriptions(self) -> Sequence[WebhookSubscription]:
        # On the driver: the consent write path (db/uow.py DriverUnitOfWork) reads them on a cache miss.
        rows = await ACTIVE_SUBSCRIPTIONS.run(self._session, {})
        return [_subscription(cast(WebhookSubscriptionRow, SimpleNamespace(**r))) for r in rows]

    async def _active_for_enqueue(self) -> Sequence[WebhookSubscription]:
        """Active subscriptions through the short in-process cache (process_caches.py: staleness bound)."""
        cached = cached_subscriptions(self._caches)
        if cached is not None:
            return cached
        found = await self.active_subscriptions()
        remember_subscriptions(self._caches, found)
        return found

    async def deactivate_subscription(self, subscription_id: int) -> bool:
        """Stop a subscription; its pending deliveries are given up. False when there is none active."""
        result = await self._session.exec(
            update(WebhookSubscriptionRow)
            .where(
                col(WebhookSubscriptionRow.id) == subscription_id,
                col(WebhookSubscriptionRow.active).is_(True),
            )
            .values(active=False)
        )
        if result.rowcount != 1:
            return False
        self._subscriptions_changed()
        await self._session.exec(
            update(WebhookDeliveryRow)
            .where(
                col(WebhookDeliveryRow.subscription_id) == subscription_id,
                col(WebhookDeliveryRow.status) == DeliveryStatus.PENDING.value,
            )
            .values(
                status=DeliveryStatus.FAILED.value, next_attempt_at=None, last_error="subscription deleted"
            )
        )
        return True

    # --- deliveries ------------------------------------------------------------------------------

    async def enqueue(
        self, event_type: WebhookEventType, payload: dict[str, Any], now: datetime
    ) -> list[int]:
        """One pending delivery per active subscription that wants `event_type`, in this transaction.

        Subscriptions are few, so they are read and filtered here (the JSON list column is not portably
        searchable); the deliveries are written in one flush. Returns the new deliveries' ids.
        """
        # consent.changed is enqueued by every consent write: its subscriptions come from the short
        # in-process cache (process_caches.py); the rarer events read them fresh.
        if event_type in CACHED_EVENTS:
            active = await self._active_for_enqueue()
        else:
            active = await self.active_subscriptions()
        wanted = [s for s in active if s.wants(event_type)]
        if not wanted:
            return []
        event_id = str(uuid.uuid4())
        rows = [
            WebhookDeliveryRow(
                subscription_id=s.id,
                event_id=event_id,
                event_type=event_type.value,
                payload=payload,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for s in wanted
        ]
        ids: list[int] = []
        for row in rows:  # subscriptions are few; on the driver, as the rest of a consent write
            values = row.model_dump(exclude={"id"})
            ids.extend(int(r["id"]) for r in await INSERT_DELIVERY.run(self._session, values))
        return ids

    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None:
        row = await self._session.get(WebhookDeliveryRow, delivery_id)
        return _delivery(row) if row else None

    async def deliveries(self, subscription_id: int, first: int, before_id: int | None) -> DeliveryPage:
        """Newest first; `before_id` is the last id of the previous page."""
        query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.subscription_id == subscription_id)
        if before_id is not None:
            query = query.where(col(WebhookDeliveryRow.id) < before_id)
        rows = list(
            await self._session.exec(query.order_by(col(WebhookDeliveryRow.id).desc()).limit(first + 1))
        )
        return DeliveryPage(tuple(_delivery(r) for r in rows[:first]), has_next_page=len(rows) > first)

    async def add_redelivery(self, original: WebhookDelivery, now: datetime) -> WebhookDelivery:
        """A fresh delivery of the same event (same event id and payload); the original's log stays."""
        row = WebhookDeliveryRow(
            subscription_id=original.subscription_id,
            event_id=original.event_id,
            event_type=original.event_type.value,
            payload=original.payload,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            redelivery_of=original.id,
        )
        self._session.add(row)
        await self._session.flush()
        return _delivery(row)

    async def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[ClaimedDelivery]:
        """Take up to `limit` due deliveries and push their next attempt to `lease_until`.

        On PostgreSQL the rows are locked with SKIP LOCKED, so concurrent senders take different rows; on
        SQLite the write lock taken at BEGIN serialises claims. Either way, a sender that dies holding a
        claim only delays that delivery until the lease runs out.
        """
        query = (
            select(WebhookDeliveryRow, WebhookSubscriptionRow)
            .join(
                WebhookSubscriptionRow,
                col(WebhookSubscriptionRow.id) == col(WebhookDeliveryRow.subscription_id),
            )
            .where(
                col(WebhookDeliveryRow.status) == DeliveryStatus.PENDING.value,
                col(WebhookDeliveryRow.next_attempt_at) <= now,
            )
            .order_by(col(WebhookDeliveryRow.next_attempt_at), col(WebhookDeliveryRow.id))
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=WebhookDeliveryRow)
        rows = list(await self._session.exec(query))
        if not rows:
            return []
        ids = [d.id for d, _ in rows]
        await self._session.exec(
            update(WebhookDeliveryRow)
            .where(col(WebhookDeliveryRow.id).in_(ids))
            .values(next_attempt_at=lease_until)
        )
        return [ClaimedDelivery(_delivery(d), s.url, s.secret_encrypted, s.active) for d, s in rows]

    async def record_attempt(
        self,
        delivery_id: int,
        attempts_before: int,
        *,
        delivered: bool,
        status_code: int | None,
        error: str | None,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> bool:
        """Store one attempt's outcome; a delivery neither delivered nor retried becomes FAILED.

        Guarded by the attempt count, so a sender whose lease ran out cannot overwrite a newer outcome.
        """
        if delivered:
            status = DeliveryStatus.DELIVERED
        elif next_attempt_at is None:
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.PENDING
        result = await self._session.exec(
            update(WebhookDeliveryRow)
            .where(
                col(WebhookDeliveryRow.id) == delivery_id, col(WebhookDeliveryRow.attempts) == attempts_before
            )
            .values(
                status=status.value,
                attempts=attempts_before + 1,
                last_status_code=status_code,
                last_error=error[:ERROR_MAX] if error else None,
                next_attempt_at=None if status is not DeliveryStatus.PENDING else next_attempt_at,
                delivered_at=now if delivered else None,
            )
        )
        return result.rowcount == 1
