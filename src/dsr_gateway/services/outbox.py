"""Delivering the outbox: claim due messages, send them, log each attempt, retry with backoff.

With no mail server configured, messages stay in the outbox (readable by staff) and are written to the
log once, with the recipient masked, so a developer can follow a verification without SMTP.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from dsr_gateway.domain.access import require_staff
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.privacy_requests import (
    MAX_DELIVERY_ATTEMPTS,
    RETRY_BASE,
    RETRY_CAP,
    OutboxMessage,
    OutboxStatus,
)
from dsr_gateway.domain.retry import backoff
from dsr_gateway.services.ports import (
    Cipher,
    Clock,
    DeliveryFailed,
    DeliveryRecord,
    Mailer,
    UnitOfWorkFactory,
)

logger = logging.getLogger("dsr_gateway.outbox")
LEASE = timedelta(minutes=5)
BATCH = 20
ERROR_MAX = 500
WITHHELD_CODE = "(a verification code: its text is shown only in development)"


@dataclass(frozen=True, slots=True)
class DeliveryRun:
    sent: int
    failed: int
    held: int
    retried: int = 0  # attempts after a message's first (backoff retries)


class OutboxService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, cipher: Cipher, *, log_bodies: bool = False
    ) -> None:
        # `log_bodies` only in development: a held message's text (a code) belongs in no production log.
        self._log_bodies = log_bodies
        self._uow = uow
        self._clock = clock
        self._cipher = cipher

    async def listing(
        self, principal: Principal, request_id: str | None = None, first: int = 50, before: int | None = None
    ) -> Sequence[OutboxMessage]:
        """Recent messages, newest first (staff): development without SMTP reads codes here.

        Outside development a verification code's text is withheld: a code proves the requester holds
        the address, and an agent who could read it could verify anyone's request."""
        require_staff(principal)
        async with self._uow() as uow:
            messages = await uow.outbox.listing(request_id, min(max(first, 1), 200), before)
        if self._log_bodies:
            return messages
        return [
            replace(m, body=WITHHELD_CODE) if m.kind is MessageKind.VERIFICATION_CODE else m for m in messages
        ]

    async def deliveries(
        self, principal: Principal, outbox_ids: Sequence[int]
    ) -> dict[int, list[DeliveryRecord]]:
        require_staff(principal)
        async with self._uow() as uow:
            return dict(await uow.outbox.deliveries(outbox_ids))

    async def deliver_due(self, mailer: Mailer) -> DeliveryRun:
        """One pass of the sender. Safe to run in several processes at once."""
        if not mailer.configured:
            return DeliveryRun(0, 0, await self._log_held())
        now = self._clock()
        async with self._uow() as uow:
            claimed = await uow.outbox.claim_due(now, BATCH, now + LEASE)
            await uow.commit()
        sent = failed = retried = 0
        for stored in claimed:
            message = stored.message
            retried += message.attempts > 1
            detail: str
            try:
                if stored.recipient_encrypted is None:
                    raise DeliveryFailed("no recipient address", permanent=True)
                to = self._cipher.decrypt(stored.recipient_encrypted)
                detail = (
                    await mailer.send(
                        to, message.subject_line, message.body, message.html, message.headers or None
                    )
                )[:ERROR_MAX]
                ok, permanent = True, False
            except DeliveryFailed as exc:
                detail, ok, permanent = str(exc)[:ERROR_MAX], False, exc.permanent
            except Exception as exc:  # an unexpected failure is retried like any other, and logged
                logger.exception("outbox message %s: unexpected error while sending", message.id)
                detail, ok, permanent = f"{type(exc).__name__}: {exc}"[:ERROR_MAX], False, False
            done = self._clock()
            if ok:
                status, next_at, sent_at = OutboxStatus.SENT, done, done
                sent += 1
            else:
                failed += 1
                gave_up = permanent or message.attempts >= MAX_DELIVERY_ATTEMPTS
                status = OutboxStatus.FAILED if gave_up else OutboxStatus.PENDING
                next_at, sent_at = done + backoff(message.attempts, RETRY_BASE, RETRY_CAP), None
                logger.warning(
                    "outbox message %s (%s to %s) attempt %d failed%s: %s",
                    message.id, message.kind.value, message.recipient_hint, message.attempts,
                    ", giving up" if gave_up else "", detail,
                )  # fmt: skip
            async with self._uow() as uow:
                await uow.outbox.record_attempt(
                    message.id,
                    DeliveryRecord(message.id, message.attempts, done, ok, detail),
                    status,
                    next_at,
                    sent_at,
                )
                await uow.commit()
        return DeliveryRun(sent, failed, 0, retried)

    async def _log_held(self) -> int:
        now = self._clock()
        async with self._uow() as uow:
            held = await uow.outbox.unlogged(BATCH)
            for stored in held:
                m = stored.message
                # The recipient is masked; the text is shown so that development works without SMTP.
                logger.info(
                    "outbox message %s held (no SMTP configured) %s to %s: %s\n%s",
                    m.id, m.kind.value, m.recipient_hint, m.subject_line,
                    m.body if self._log_bodies else "(text not logged outside development)",
                )  # fmt: skip
            await uow.outbox.mark_logged([s.message.id for s in held], now)
            await uow.commit()
        return len(held)
