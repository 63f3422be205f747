"""The webhook sender: claims due deliveries, POSTs them signed, retries with backoff, gives up after N.

Delivery is at least once: a sender that dies after the receiver answered but before the outcome was
stored sends again after the lease. Receivers deduplicate on `X-DSR-Delivery` (or the body's event `id`,
which a redelivery keeps).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx

from dsr_gateway import __version__
from dsr_gateway.connectors.webhook_signing import sign
from dsr_gateway.db.repositories.webhooks import ClaimedDelivery
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.retry import backoff
from dsr_gateway.domain.webhooks import envelope
from dsr_gateway.services.ports import Clock, SecretCipher

logger = logging.getLogger("dsr_gateway.worker.webhooks")


@dataclass(frozen=True, slots=True)
class SenderPolicy:
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=6)
    batch_size: int = 20
    # How long a claim keeps other senders off a delivery; longer than the request timeout.
    lease: timedelta = timedelta(minutes=2)
    request_timeout_seconds: float = 15.0


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    delivered: bool
    status_code: int | None
    error: str | None


class WebhookSender:
    def __init__(
        self,
        uow: Callable[[], SqlUnitOfWork],
        http: httpx.AsyncClient,
        cipher: SecretCipher,
        clock: Clock,
        policy: SenderPolicy | None = None,
        jitter: Callable[[], float] = random.random,
        destination_guard: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._uow = uow
        self._http = http
        self._cipher = cipher
        self._clock = clock
        self._policy = policy or SenderPolicy()
        self._jitter = jitter
        # Says why a URL must not be posted to (a non-public address), or None (connectors/public_addresses).
        self._destination_guard = destination_guard

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and try each once; returns how many were tried."""
        now = self._clock()
        async with self._uow() as uow:
            claimed = await uow.webhooks.claim_due(now, self._policy.batch_size, now + self._policy.lease)
            await uow.commit()
        if claimed:
            await asyncio.gather(*(self._attempt(c) for c in claimed))
        return len(claimed)

    async def _attempt(self, claimed: ClaimedDelivery) -> None:
        delivery = claimed.delivery
        attempt = delivery.attempts + 1
        if not claimed.subscription_active:
            outcome = AttemptOutcome(False, None, "subscription deleted")
            retry_at = None
        else:
            outcome = await self._post(claimed)
            retry_at = None
            if not outcome.delivered and attempt < self._policy.max_attempts:
                # Half to all of the exponential wait: a jitter() of 0 waits half, near 1 all of it.
                delay = backoff(
                    attempt, self._policy.backoff_base, self._policy.backoff_cap, 0.5, 1.0 - self._jitter()
                )
                retry_at = self._clock() + delay
        logger.info(
            "webhook delivery %s (subscription %s, %s) attempt %s/%s: %s",
            delivery.id,
            delivery.subscription_id,
            delivery.event_type.value,
            attempt,
            self._policy.max_attempts,
            "delivered"
            if outcome.delivered
            else f"{outcome.error}; " + (f"retry at {retry_at.isoformat()}" if retry_at else "giving up"),
        )
        async with self._uow() as uow:
            stored = await uow.webhooks.record_attempt(
                delivery.id,
                delivery.attempts,
                delivered=outcome.delivered,
                status_code=outcome.status_code,
                error=outcome.error,
                next_attempt_at=retry_at,
                now=self._clock(),
            )
            await uow.commit()
        if not stored:
            logger.warning("webhook delivery %s: another sender recorded this attempt first", delivery.id)

    async def _post(self, claimed: ClaimedDelivery) -> AttemptOutcome:
        delivery = claimed.delivery
        body = envelope(delivery)
        timestamp = int(self._clock().timestamp())
        try:
            secret = self._cipher.decrypt(claimed.secret_encrypted)
        except ValueError:
            return AttemptOutcome(
                False, None, "the subscription's secret cannot be decrypted (was the key changed?)"
            )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"dsr-gateway-webhooks/{__version__}",
            "X-DSR-Event": delivery.event_type.value,
            "X-DSR-Delivery": str(delivery.id),
            "X-DSR-Timestamp": str(timestamp),
            "X-DSR-Signature": sign(secret, timestamp, body),
        }
        if self._destination_guard is not None:
            refused = await self._destination_guard(claimed.url)
            if refused is not None:
                return AttemptOutcome(False, None, f"not sent: {refused}")
        try:
            response = await self._http.post(
                claimed.url,
                content=body,
                headers=headers,
                timeout=self._policy.request_timeout_seconds,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            return AttemptOutcome(
                False, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            )
        if 200 <= response.status_code < 300:
            return AttemptOutcome(True, response.status_code, None)
        return AttemptOutcome(False, response.status_code, f"HTTP {response.status_code}")
