"""The ledger's follower: the receipt and the "permission changed" message of every consent change.

A consent write records its events, the projection and the webhook, and commits; nothing else is on its
path. This follower reads the changes feed in commit order (the same feed `consentEvents(since:)` serves,
which never skips an event of a transaction still open), groups the events into calls
(domain/consent_calls.py) and, in ONE unit of work per page, signs and stores each call's receipt,
queues its messages and moves its position: a page is followed up exactly once, or not at all and
tried again. Every writer of the ledger is followed the same way: setConsents, withdrawConsent,
reconfirmation and unsubscribe links, GPC signals, the expiry sweep (imports get no receipt).

The worker runs it every DSR_CONSENT_FOLLOWUP_POLL_SECONDS; `dsr-gateway sweep` runs it to the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsr_gateway.domain.consent_calls import FeedItem, gets_receipt, group_calls
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.consent_receipts import ConsentReceipts
from dsr_gateway.services.ports import Clock, UnitOfWorkFactory

FOLLOWER = "receipts-and-messages"
PAGE = 500
MAX_PAGES_PER_RUN = 200  # a run_until_idle pass ends after this many pages; the next pass goes on


@dataclass(frozen=True, slots=True)
class FollowUpRun:
    events: int
    receipts: int
    messages: int


class ConsentFollowUps:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        receipts: ConsentReceipts | None,
        effects: ConsentEffects,
        page: int = PAGE,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._receipts = receipts
        self._effects = effects
        self._page = page

    async def run_once(self) -> FollowUpRun:
        """Follow up one page of the feed (at most `page` events)."""
        async with self._uow() as uow:
            # Locked until commit: a second worker waits here, then starts after this page.
            position = await uow.consents.followup_position(FOLLOWER, self._clock())
            entries = await uow.consents.feed(self._page, position)
            items = [FeedItem(e.event, e.external_id, e.position.tx_order) for e in entries]
            calls, covered = group_calls(items, more=len(entries) == self._page)
            if not covered:
                return FollowUpRun(0, 0, 0)
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            receipts = []
            if self._receipts is not None:
                receipts = await self._receipts.issue(uow, [c for c in calls if gets_receipt(c)], purposes)
            messages = await self._effects.announce(uow, calls, purposes)
            await uow.consents.move_followup(FOLLOWER, entries[covered - 1].position, self._clock())
            await uow.commit()
        return FollowUpRun(covered, len(receipts), messages)

    async def run_until_idle(self) -> FollowUpRun:
        """Follow up page after page until the feed has nothing new (or MAX_PAGES_PER_RUN pages)."""
        events = receipts = messages = 0
        for _ in range(MAX_PAGES_PER_RUN):
            run = await self.run_once()
            if not run.events:
                break
            events, receipts, messages = events + run.events, receipts + run.receipts, messages + run.messages
        return FollowUpRun(events, receipts, messages)
