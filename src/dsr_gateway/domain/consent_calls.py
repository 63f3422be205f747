"""The changes feed read back as calls: what one transaction recorded for one subject.

The receipt of a consent change and its "permission changed" message are made from the ledger after the
change commits (services/consent_followups.py). The feed gives events in commit order; the events of one
call are those of one subject with the same transaction position and the same recorded-at time (a call
takes its time once, under the subject's lock; SQLite has no transaction position, the time tells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dsr_gateway.domain.consent import ConsentAction, ConsentEvent, ConsentMethod

# History carried over from another system got its receipt there; an expiry is housekeeping, told to the
# subject by the "permission changed" message (and the reconfirmation reminder before it).
NO_RECEIPT_METHODS = frozenset({ConsentMethod.IMPORT})
NO_RECEIPT_ACTIONS = frozenset({ConsentAction.EXPIRE})


@dataclass(frozen=True, slots=True)
class ConsentCall:
    external_id: str
    events: tuple[ConsentEvent, ...]

    @property
    def subject_id(self) -> int:
        return self.events[0].subject_id


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One event of the feed, with what grouping needs beside it."""

    event: ConsentEvent
    external_id: str
    tx_order: int


def group_calls(items: Sequence[FeedItem], *, more: bool) -> tuple[list[ConsentCall], int]:
    """The calls in `items`, in feed order, and how many items they cover.

    With `more` (the page was full) the last call may continue on the next page: it is left for then,
    unless it is the only one (a call larger than a page is then taken in parts).
    """
    calls: list[ConsentCall] = []
    open_key: tuple[int, int, object] | None = None
    current: list[FeedItem] = []
    groups: list[list[FeedItem]] = []
    for item in items:
        event = item.event
        key = (event.subject_id, item.tx_order, event.recorded_at)
        if key != open_key:
            current = []
            groups.append(current)
            open_key = key
        current.append(item)
    if more and len(groups) > 1:
        groups.pop()
    covered = 0
    for group in groups:
        calls.append(ConsentCall(group[0].external_id, tuple(i.event for i in group)))
        covered += len(group)
    return calls, covered


def gets_receipt(call: ConsentCall) -> bool:
    """Whether the call's subject gets a signed receipt for it."""
    return any(e.method not in NO_RECEIPT_METHODS and e.action not in NO_RECEIPT_ACTIONS for e in call.events)
