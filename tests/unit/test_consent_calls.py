"""The changes feed read back as calls, and which calls get a receipt (domain/consent_calls.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    Origin,
    Scope,
)
from dsr_gateway.domain.consent_calls import ConsentCall, FeedItem, gets_receipt, group_calls

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SUBJECT = Actor(ActorKind.SUBJECT, "s")


def item(
    event_id: int,
    subject_id: int,
    tx_order: int = 0,
    second: int = 0,
    action: ConsentAction = ConsentAction.GRANT,
    method: ConsentMethod = ConsentMethod.CHECKBOX,
) -> FeedItem:
    at = T0 + timedelta(seconds=second)
    event = ConsentEvent(event_id, subject_id, Scope("news"), action, method, 1, Origin(), SUBJECT, at, at)
    return FeedItem(event, f"ext-{subject_id}", tx_order)


def shape(calls: list[ConsentCall]) -> list[tuple[str, list[int]]]:
    return [(c.external_id, [e.id for e in c.events]) for c in calls]


@pytest.mark.parametrize(
    ("items", "more", "expected", "covered"),
    [
        pytest.param([], False, [], 0, id="nothing new"),
        # One call: one subject, one transaction, one time.
        pytest.param([item(1, 7), item(2, 7)], False, [("ext-7", [1, 2])], 2, id="one call"),
        # Another subject, another transaction or another time: another call.
        pytest.param([item(1, 7), item(2, 8)], False, [("ext-7", [1]), ("ext-8", [2])], 2, id="two subjects"),
        pytest.param(
            [item(1, 7, tx_order=10), item(2, 7, tx_order=11)],
            False,
            [("ext-7", [1]), ("ext-7", [2])],
            2,
            id="two transactions",
        ),
        pytest.param(
            [item(1, 7), item(2, 7, second=1)],
            False,
            [("ext-7", [1]), ("ext-7", [2])],
            2,
            id="two times (SQLite: no transaction order)",
        ),
        # A full page: its last call may go on in the next page, so it waits for it...
        pytest.param(
            [item(1, 7), item(2, 8), item(3, 8)], True, [("ext-7", [1])], 1, id="full page holds its last"
        ),
        # ...unless it is the only call of the page (bigger than a page: taken in parts).
        pytest.param([item(1, 7), item(2, 7)], True, [("ext-7", [1, 2])], 2, id="a call bigger than a page"),
    ],
)
def test_feed_items_are_grouped_into_calls(
    items: list[FeedItem], more: bool, expected: list[tuple[str, list[int]]], covered: int
) -> None:
    calls, count = group_calls(items, more=more)
    assert shape(calls) == expected
    assert count == covered


@pytest.mark.parametrize(
    ("action", "method", "receipt"),
    [
        (ConsentAction.GRANT, ConsentMethod.CHECKBOX, True),
        (ConsentAction.WITHDRAW, ConsentMethod.BUTTON, True),
        (ConsentAction.RECONFIRM, ConsentMethod.BUTTON, True),
        (ConsentAction.OBJECT, ConsentMethod.AGENT, True),
        (ConsentAction.GPC_OPT_OUT, ConsentMethod.GPC, True),
        (ConsentAction.WITHDRAW, ConsentMethod.UNSUBSCRIBE_LINK, True),
        # Housekeeping and history carried over from another system: no receipt.
        (ConsentAction.EXPIRE, ConsentMethod.SYSTEM, False),
        (ConsentAction.GRANT, ConsentMethod.IMPORT, False),
        (ConsentAction.WITHDRAW, ConsentMethod.IMPORT, False),
    ],
)
def test_which_calls_get_a_receipt(action: ConsentAction, method: ConsentMethod, receipt: bool) -> None:
    call = ConsentCall("ext-7", (item(1, 7, action=action, method=method).event,))
    assert gets_receipt(call) is receipt
