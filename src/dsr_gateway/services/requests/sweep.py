"""The SLA sweep: moves open requests to AT_RISK and OVERDUE as time passes and raises alerts once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsr_gateway.domain.sla import SlaStatus
from dsr_gateway.domain.webhooks import WebhookEventType
from dsr_gateway.services.ports import Clock, EventBus, UnitOfWorkFactory
from dsr_gateway.services.requests.clock import SlaClock
from dsr_gateway.services.requests.common import REQUEST_CHANNEL, SLA_ALERT_CHANNEL, event_payload

logger = logging.getLogger("dsr_gateway.sla")
# The widest at-risk window: 20% of the longest period (3 months + rolls) stays under 20 days.
HORIZON = timedelta(days=20)
BATCH = 500
ALERTING = {SlaStatus.AT_RISK, SlaStatus.OVERDUE}


@dataclass(frozen=True, slots=True)
class SweepResult:
    examined: int
    changed: int
    alerts: int


class SlaSweepService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, events: EventBus, sla: SlaClock) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events
        self._sla = sla

    async def sweep(self) -> SweepResult:
        """Every open request that needs a look, batch by batch (each its own transaction)."""
        now = self._clock()
        examined = changed = alerted = 0
        after: tuple[datetime, str] | None = None
        while True:
            count, batch_changed, batch_alerts, last = await self._sweep_batch(now, after)
            examined, changed, alerted = examined + count, changed + batch_changed, alerted + batch_alerts
            if count < BATCH or last is None:
                break
            after = last
        if changed:
            logger.info("SLA sweep: %d of %d requests changed status, %d alerts", changed, examined, alerted)
        return SweepResult(examined, changed, alerted)

    async def _sweep_batch(
        self, now: datetime, after: tuple[datetime, str] | None
    ) -> tuple[int, int, int, tuple[datetime, str] | None]:
        alerts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        async with self._uow() as uow:
            candidates = await uow.requests.sweep_candidates(now + HORIZON, now, BATCH, after)
            paused = await uow.requests.open_pauses([r.id for r in candidates])
            changed = 0
            for request in candidates:
                view = self._sla.view(request, now, request.id in paused)
                if view.sla_status.value != request.sla_status:
                    changed += 1
                    await uow.requests.set_sla_status(request.id, view.sla_status.value, now)
                    moved = request.evolve(sla_status=view.sla_status.value)
                    updates.append(event_payload(moved, "SLA_STATUS", now))
                # Alerts are recorded once per kind, also for a request that arrived already at risk.
                if view.sla_status in ALERTING and await uow.requests.add_alert(
                    request.id, view.sla_status.value, request.due_at, now
                ):
                    alert: dict[str, object] = {
                        "requestId": request.id,
                        "kind": view.sla_status.value,
                        "dueAt": request.due_at.isoformat(),
                        "raisedAt": now.isoformat(),
                        "jurisdiction": request.jurisdiction.value,
                        "assignee": request.assignee,
                        "subjectExternalId": request.subject_external_id,
                    }
                    alerts.append(alert)
                    # The `sla.alert` webhook, in this transaction: it exists exactly when the alert does.
                    await uow.webhooks.enqueue(WebhookEventType.SLA_ALERT, dict(alert), now)
            await uow.commit()
        for payload in updates:
            await self._events.publish(REQUEST_CHANNEL, payload)
        for alert in alerts:
            await self._events.publish(SLA_ALERT_CHANNEL, alert)
        last = (candidates[-1].due_at, candidates[-1].id) if candidates else None
        return len(candidates), changed, len(alerts), last
