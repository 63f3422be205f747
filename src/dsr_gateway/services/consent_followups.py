"""The ledger's follower: the receipt and the "permission changed" message of every consent change.

A consent write records its events, the projection and the webhook, and commits; nothing else is on its
path. This follower reads the changes feed in commit order (the same feed `consentEvents(since:)` serves,
which never skips an event of a transaction still open), groups the events into calls
(domain/consent_calls.py) and, in ONE unit of work per page, signs and stores each call's receipt (or
queues its messages: a second follower) and moves its position: a page is followed up exactly once, or
not at all and tried again. Every writer of the ledger is followed the same way: setConsents, withdrawConsent,
reconfirmation and unsubscribe links, GPC signals, the expiry sweep (imports get no receipt).

The worker runs it every DSR_CONSENT_FOLLOWUP_POLL_SECONDS; `dsr-gateway sweep` runs it to the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dsr_gateway.domain.consent_calls import ConsentCall, FeedItem, gets_receipt, group_calls
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.consent_receipts import ConsentReceipts
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

# Two followers, each with its own position: a message that cannot be rendered (a broken template
# override) holds back the messages, not the receipts, and the other way round. A page that fails is tried
# again on the next run (worker metrics count the failures); nothing is skipped.
RECEIPTS, MESSAGES = "receipts", "messages"
PAGE = 500
MAX_PAGES_PER_RUN = 200  # a run_until_idle pass ends after this many pages; the next pass goes on

FollowUp = Callable[[UnitOfWork, list[ConsentCall], dict[str, Purpose]], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class FollowUpRun:
    events: int  # events followed up (by the receipts' follower; by the messages' when there are no receipts)
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
        """Follow up one page of the feed (at most `page` events) for the receipts, then the messages."""
        receipts_events = receipts = 0
        if self._receipts is not None:
            receipts_events, receipts = await self._follow(RECEIPTS, self._issue_receipts)
        messages_events, messages = await self._follow(MESSAGES, self._effects.announce)
        events = receipts_events if self._receipts is not None else messages_events
        return FollowUpRun(events, receipts, messages)

    async def run_until_idle(self) -> FollowUpRun:
        """Follow up page after page until the feed has nothing new (or MAX_PAGES_PER_RUN pages)."""
        events = receipts = messages = 0
        for _ in range(MAX_PAGES_PER_RUN):
            run = await self.run_once()
            if not (run.events or run.receipts or run.messages):
                break
            events, receipts, messages = events + run.events, receipts + run.receipts, messages + run.messages
        return FollowUpRun(events, receipts, messages)

    async def _issue_receipts(
        self, uow: UnitOfWork, calls: list[ConsentCall], purposes: dict[str, Purpose]
    ) -> int:
        assert self._receipts is not None
        return len(await self._receipts.issue(uow, [c for c in calls if gets_receipt(c)], purposes))

    async def _follow(self, name: str, follow_up: FollowUp) -> tuple[int, int]:
        """One page for the follower `name`, in one unit of work: (events covered, what it made)."""
        async with self._uow() as uow:
            # Locked until commit: a second worker waits here, then starts after this page.
            position = await uow.consents.followup_position(name, self._clock())
            entries = await uow.consents.feed(self._page, position)
            items = [FeedItem(e.event, e.external_id, e.position.tx_order) for e in entries]
            calls, covered = group_calls(items, more=len(entries) == self._page)
            if not covered:
                await uow.commit()  # keeps a position made just now (followup_position)
                return 0, 0
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            made = await follow_up(uow, calls, purposes)
            await uow.consents.move_followup(name, entries[covered - 1].position, self._clock())
            await uow.commit()
        return covered, made
