"""What every consent change sets off:

- the `consent.changed` webhook (one delivery per subscription per call, listing the events), queued in
  the change's own unit of work (`after_change`, before its commit);
- a "permission changed" message to the subject when someone else made the change: an agent, an API
  client, or the system (an expiry). Not for imports (history carried over from another system), nor
  for a GPC signal or an unsubscribe link (the subject's own acts). Rendered and queued by the ledger's
  follower after the change committed (`announce`, services/consent_followups.py), off the write path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dsr_gateway.domain.consent import GRANTING_ACTIONS, ActorKind, ConsentEvent, ConsentMethod
from dsr_gateway.domain.consent_calls import ConsentCall
from dsr_gateway.domain.messages import MessageKind
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.webhooks import WebhookEventType
from dsr_gateway.services.comms.compose import Composer
from dsr_gateway.services.ports import Clock, UnitOfWork

NOT_ANNOUNCED_METHODS = frozenset({ConsentMethod.IMPORT, ConsentMethod.GPC, ConsentMethod.UNSUBSCRIBE_LINK})
CHANGED_BY = {
    ActorKind.AGENT: "a member of our support team",
    ActorKind.API_CLIENT: "one of our applications",
    ActorKind.SYSTEM: "our system",
}


def event_json(event: ConsentEvent) -> dict[str, object]:
    return {
        "id": event.id,
        "purpose": event.scope.purpose,
        "topic": event.scope.topic or None,
        "channel": event.scope.channel or None,
        "action": event.action.value,
        "method": event.method.value,
        "actorKind": event.actor.kind.value,
        "noticeVersion": event.notice_version,
        "occurredAt": event.occurred_at.isoformat(),
    }


class ConsentEffects:
    def __init__(self, clock: Clock, composer: Composer | None) -> None:
        self._clock = clock
        self._composer = composer

    async def after_change(self, uow: UnitOfWork, external_id: str, events: Sequence[ConsentEvent]) -> None:
        """Queue the change's webhook in its own unit of work."""
        if not events:
            return
        now = self._clock()
        payload = {"subjectId": external_id, "events": [event_json(e) for e in events]}
        await uow.webhooks.enqueue(WebhookEventType.CONSENT_CHANGED, payload, now)

    async def announce(
        self, uow: UnitOfWork, calls: Sequence[ConsentCall], purposes: Mapping[str, Purpose]
    ) -> int:
        """One "permission changed" message per purpose changed by someone other than the subject, for
        each call; the subjects' addresses are read in one statement. How many were queued."""
        if self._composer is None:
            return 0
        announced: list[tuple[int, dict[str, ConsentEvent]]] = []
        for call in calls:
            last: dict[str, ConsentEvent] = {}
            for event in call.events:
                if event.actor.kind is not ActorKind.SUBJECT and event.method not in NOT_ANNOUNCED_METHODS:
                    last[event.scope.purpose] = event
            if last:
                announced.append((call.subject_id, last))
        if not announced:
            return 0
        contacts = await uow.comms.contacts([subject_id for subject_id, _ in announced])
        messages = []
        for subject_id, last in announced:
            for key, event in last.items():
                purpose = purposes.get(key)
                context = {
                    "purpose_title": purpose.title if purpose else key,
                    "granted": event.action in GRANTING_ACTIONS,
                    "changed_by": CHANGED_BY.get(event.actor.kind, "someone else"),
                    "changed_on": event.occurred_at,
                    "preferences_url": self._composer.config.preferences_url,
                }
                messages.append(
                    self._composer.to_contact(
                        MessageKind.PERMISSION_CHANGED, context, contacts.get(subject_id), subject_id
                    )
                )
        await uow.outbox.add_later(messages, self._clock())
        return len(messages)
