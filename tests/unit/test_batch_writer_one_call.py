"""BatchWriter's one-call path (a batch of one): its subject counts among the batches' while it is written,
and a call whose subject only the other batch of ours holds is not treated as held by an import."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from dsr_gateway.domain.consent import Actor, ActorKind, ConsentMethod
from dsr_gateway.domain.consent_rules import ConsentChoice
from dsr_gateway.services.consent_writes import BatchWriter, SetCall, SetConsentsRequest
from dsr_gateway.services.group_commit import ALONE, ALONE_UNHELD


def call(subject: str) -> SetCall:
    request = SetConsentsRequest(subject, [ConsentChoice("newsletter", True)], ConsentMethod.API)
    return SetCall(request, subject, Actor(ActorKind.API_CLIENT, "c"), ConsentMethod.API, None)


def writer(outcome: Any, seen: list[set[str]]) -> BatchWriter:
    async def write_one(one: SetCall) -> Any:
        seen.append(set(batches._in_batches))
        await asyncio.sleep(0)
        return outcome

    batches = BatchWriter(None, lambda: datetime.now(UTC), None, write_one)  # type: ignore[arg-type]
    return batches


async def test_its_subject_counts_among_the_batches_while_it_is_written() -> None:
    seen: list[set[str]] = []
    batches = writer("done", seen)
    assert await batches([call("s-1")]) == ["done"]
    assert seen == [{"s-1"}]
    assert batches._in_batches == set()  # forgotten once written


async def test_held_only_by_the_other_batch_it_is_not_held_as_by_an_import() -> None:
    seen: list[set[str]] = []
    batches = writer(ALONE, seen)
    batches._in_batches.add("s-1")  # the other batch being written holds it
    assert await batches([call("s-1")]) == [ALONE_UNHELD]
    assert batches._in_batches == {"s-1"}  # still the other batch's
    assert await batches([call("s-2")]) == [ALONE]  # held by someone else: may wait long
