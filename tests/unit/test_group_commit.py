"""GroupCommit: calls made together are written together; each caller gets its own outcome."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from typing import Any

import pytest

from dsr_gateway.services.group_commit import (
    ALONE,
    ALONE_UNHELD,
    GroupCommit,
    MustWait,
    OutcomeUnknown,
    turns_for_pool,
)


class Writer:
    """Records how calls were written; `outcome` decides what the batch says for each call."""

    def __init__(self, outcome: Any = None, fail_batches: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.alone: list[str] = []
        self.outcome = outcome or (lambda call: f"done:{call}")
        self.fail_batches = fail_batches

    async def write_batch(self, calls: Sequence[str]) -> list[Any]:
        await asyncio.sleep(0.01)  # a transaction's time: calls arriving meanwhile wait
        if self.fail_batches:
            raise ConnectionError("the database went away")
        self.batches.append(list(calls))
        return [self.outcome(call) for call in calls]

    async def write_alone(self, call: str) -> str:
        await asyncio.sleep(0.01)
        if call.startswith("bad"):
            raise ValueError(f"refused {call}")
        self.alone.append(call)
        return f"alone:{call}"


async def start(group: GroupCommit[str, str], call: str) -> asyncio.Task[str]:
    """Submit a call and let the loop turn, so it reaches the group before the next one."""
    task = asyncio.create_task(group.submit(call))
    await asyncio.sleep(0)
    return task


async def test_calls_arriving_together_are_written_together() -> None:
    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    results = await asyncio.gather(*(group.submit(f"c{i}") for i in range(4)))
    assert results == ["done:c0", "done:c1", "done:c2", "done:c3"]
    assert writer.batches == [["c0", "c1", "c2", "c3"]]
    assert writer.alone == []


async def test_the_calls_arriving_while_a_batch_is_written_make_the_next_batch() -> None:
    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    first = await start(group, "c0")
    later = [await start(group, f"c{i}") for i in range(1, 5)]
    assert await first == "done:c0"
    assert [await t for t in later] == ["done:c1", "done:c2", "done:c3", "done:c4"]
    assert writer.batches == [["c0"], ["c1", "c2", "c3", "c4"]]
    assert writer.alone == []


async def test_batches_hold_at_most_max_batch_calls_in_arrival_order() -> None:
    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone, max_batch=3)
    results = await asyncio.gather(*(group.submit(f"c{i}") for i in range(7)))
    assert results == [f"done:c{i}" for i in range(7)]
    assert writer.batches == [["c0", "c1", "c2"], ["c3", "c4", "c5"], ["c6"]]


@pytest.mark.parametrize("kind", ["error", "alone"])
async def test_each_call_gets_its_own_outcome(kind: str) -> None:
    def outcome(call: str) -> Any:
        if call == "c2":
            return ValueError("c2 is refused") if kind == "error" else ALONE
        return f"done:{call}"

    writer = Writer(outcome)
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    results = await asyncio.gather(*(group.submit(f"c{i}") for i in range(4)), return_exceptions=True)
    assert results[0] == "done:c0"
    assert results[1] == "done:c1"
    assert results[3] == "done:c3"
    if kind == "error":
        assert isinstance(results[2], ValueError)
        assert str(results[2]) == "c2 is refused"
    else:
        assert results[2] == "alone:c2"  # written on its own after the batch
        assert writer.alone == ["c2"]


async def test_a_failed_batch_writes_each_call_on_its_own() -> None:
    writer = Writer(fail_batches=True)
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    calls = ["c0", "c1", "bad2", "c3"]
    results = await asyncio.gather(*(group.submit(c) for c in calls), return_exceptions=True)
    assert results[0] == "alone:c0"  # every call of the failed batch, on its own
    assert results[1] == "alone:c1"
    assert isinstance(results[2], ValueError)  # its own failure, not the batch's
    assert results[3] == "alone:c3"
    assert writer.batches == []


async def test_a_caller_gone_before_its_batch_is_not_written() -> None:
    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    first = await start(group, "c0")
    leaving = await start(group, "gone")
    staying = [await start(group, f"c{i}") for i in (1, 2)]
    leaving.cancel()
    assert await first == "done:c0"
    assert [await t for t in staying] == ["done:c1", "done:c2"]
    assert writer.batches == [["c0"], ["c1", "c2"]]


async def test_a_call_waiting_on_its_own_does_not_hold_up_the_batches_after_it() -> None:
    release = asyncio.Event()

    async def write_alone(call: str) -> str:
        await release.wait()  # e.g. its subject is held by another writer
        return f"alone:{call}"

    writer = Writer(lambda call: ALONE if call == "held" else f"done:{call}")
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, write_alone)
    held = await start(group, "held")
    await asyncio.sleep(0.02)  # its batch said ALONE; it now waits in a task of its own
    assert await group.submit("c1") == "done:c1"
    assert not held.done()
    release.set()
    assert await held == "alone:held"


async def test_a_batch_whose_commit_failed_is_not_run_again_and_its_callers_get_the_cause() -> None:
    class LostAtCommit(Writer):
        async def write_batch(self, calls: Sequence[str]) -> list[Any]:
            self.batches.append(list(calls))
            try:
                raise ConnectionError("the connection closed during COMMIT")
            except ConnectionError as exc:
                raise OutcomeUnknown from exc

    writer = LostAtCommit()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    results = await asyncio.gather(*(group.submit(f"c{i}") for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert writer.alone == []  # maybe recorded: running them again could record them twice


async def test_callers_are_answered_when_the_batch_writer_is_cancelled() -> None:
    started = asyncio.Event()

    async def write_batch(calls: Sequence[str]) -> list[Any]:
        started.set()
        await asyncio.sleep(10)
        return []

    writer = Writer()
    group: GroupCommit[str, str] = GroupCommit(write_batch, writer.write_alone)
    first = await start(group, "c0")
    await started.wait()
    later = await start(group, "c1")  # waiting for the next batch
    (drainer,) = group._drainers
    drainer.cancel()
    for task in (first, later):
        with pytest.raises(RuntimeError, match="stopped"):
            await task


class Overlapping(Writer):
    """Counts the batches being written at once; each batch waits until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = 0
        self.most = 0
        self.release = asyncio.Event()

    async def write_batch(self, calls: Sequence[str]) -> list[Any]:
        self.writing += 1
        self.most = max(self.most, self.writing)
        try:
            await self.release.wait()
            return await super().write_batch(calls)
        finally:
            self.writing -= 1


@pytest.mark.parametrize("at_once", [1, 2, 3])
async def test_at_most_batches_at_once_batches_are_written_at_once(at_once: int) -> None:
    writer = Overlapping()
    group: GroupCommit[str, str] = GroupCommit(
        writer.write_batch, writer.write_alone, batches_at_once=at_once
    )
    tasks = [await start(group, f"c{i}") for i in range(6)]  # one by one: each finds the others busy
    await asyncio.sleep(0.01)
    assert writer.writing == at_once
    writer.release.set()
    assert [await t for t in tasks] == [f"done:c{i}" for i in range(6)]
    assert writer.most == at_once
    # The first batches took one call each; the calls waiting meanwhile made the next batch.
    assert writer.batches[:at_once] == [[f"c{i}"] for i in range(at_once)]
    assert sorted(c for batch in writer.batches for c in batch) == [f"c{i}" for i in range(6)]


async def test_a_stopped_batch_writer_leaves_the_waiting_calls_to_the_one_still_writing() -> None:
    writer = Overlapping()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone, batches_at_once=2)
    first, second = await start(group, "c0"), await start(group, "c1")
    waiting = await start(group, "c2")
    await asyncio.sleep(0.01)
    assert len(group._drainers) == 2
    next(iter(group._drainers)).cancel()  # one of the two
    await asyncio.sleep(0)
    writer.release.set()
    assert await waiting == "done:c2"  # written by the other one, not failed as at shutdown
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert sum(isinstance(o, RuntimeError) for o in outcomes) == 1  # the stopped batch's caller
    assert sum(o in ("done:c0", "done:c1") for o in outcomes) == 1


async def test_at_most_max_alone_calls_are_written_on_their_own_at_once() -> None:
    running, most = [0], [0]

    async def write_alone(call: str) -> str:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        return f"alone:{call}"

    writer = Writer(lambda call: ALONE)
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, write_alone, max_alone=2)
    results = await asyncio.gather(*(group.submit(f"c{i}") for i in range(6)))
    assert results == [f"alone:c{i}" for i in range(6)]
    assert most[0] == 2


async def test_calls_kept_waiting_never_take_the_turns_of_calls_that_are_not_held() -> None:
    release = asyncio.Event()

    async def write_alone(call: str) -> str:
        if call.startswith("held"):
            await release.wait()  # its subject is held by an import
        return f"alone:{call}"

    writer = Writer(lambda call: ALONE if call.startswith("held") else ALONE_UNHELD)
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, write_alone, max_alone=2)
    held = [await start(group, f"held{i}") for i in range(3)]  # two turns taken, one waiting for a turn
    await asyncio.sleep(0.05)
    new = await asyncio.wait_for(asyncio.gather(*(group.submit(f"new{i}") for i in range(3))), 5)
    assert new == ["alone:new0", "alone:new1", "alone:new2"]  # not behind the held ones
    assert not any(t.done() for t in held)
    release.set()
    assert [await t for t in held] == ["alone:held0", "alone:held1", "alone:held2"]


async def test_an_unheld_call_that_must_wait_after_all_moves_to_the_turns_of_those_that_may() -> None:
    release = asyncio.Event()
    order: list[str] = []

    async def write_alone(call: str) -> str:
        order.append(f"alone:{call}")
        if call == "held":
            await release.wait()
        return f"alone:{call}"

    async def write_unheld(call: str) -> str:
        order.append(f"unheld:{call}")
        if call == "arriving":  # e.g. an import is creating its subject
            raise MustWait
        return f"unheld:{call}"

    writer = Writer(lambda call: ALONE if call == "held" else ALONE_UNHELD)
    group: GroupCommit[str, str] = GroupCommit(
        writer.write_batch, write_alone, max_alone=1, write_unheld=write_unheld
    )
    held = await start(group, "held")  # takes the one turn of calls that may wait
    await asyncio.sleep(0.02)
    arriving = await start(group, "arriving")
    assert await asyncio.wait_for(group.submit("signup"), 5) == "unheld:signup"
    assert not arriving.done()  # tried once, then queued behind "held" for a turn that may wait
    release.set()
    assert (await held, await arriving) == ("alone:held", "alone:arriving")
    assert order == ["alone:held", "unheld:arriving", "unheld:signup", "alone:arriving"]


async def test_calls_still_waiting_are_answered_when_the_last_of_two_batch_writers_stops() -> None:
    writer = Overlapping()
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone, batches_at_once=2)
    writing = [await start(group, "c0"), await start(group, "c1")]
    waiting = await start(group, "c2")
    await asyncio.sleep(0.01)
    for drainer in list(group._drainers):
        drainer.cancel()
    for task in (*writing, waiting):
        with pytest.raises(RuntimeError, match="stopped"):
            await task


@pytest.mark.parametrize(
    ("pool_size", "batches_at_once", "turns"),
    [(10, 2, 3), (10, 1, 3), (20, 2, 3), (8, 2, 2), (6, 2, 1), (5, 2, 1), (2, 2, 1), (1, 1, 1)],
)
def test_turns_leave_room_in_the_pool(pool_size: int, batches_at_once: int, turns: int) -> None:
    assert turns_for_pool(pool_size, batches_at_once) == turns


async def test_aclose_waits_for_the_calls_being_written() -> None:
    writer = Writer(lambda call: ALONE)
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, writer.write_alone)
    tasks = [await start(group, f"c{i}") for i in range(3)]
    await group.aclose()
    assert all(t.done() for t in tasks)
    assert sorted(writer.alone) == ["c0", "c1", "c2"]


async def test_a_call_written_on_its_own_runs_in_its_callers_context() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")
    seen: dict[str, str] = {}

    async def write_alone(call: str) -> str:
        seen[call] = request_id.get()
        return call

    writer = Writer(lambda call: ALONE)
    group: GroupCommit[str, str] = GroupCommit(writer.write_batch, write_alone)

    async def caller(call: str) -> str:
        request_id.set(f"req-{call}")
        return await group.submit(call)

    await asyncio.gather(caller("a"), caller("b"))
    assert seen == {"a": "req-a", "b": "req-b"}


class NoTurn(Exception):
    """What a call that waited too long for a turn of its own gets."""


@pytest.mark.parametrize(("may_wait", "given_up"), [(None, 0), (0.05, 3)])
async def test_calls_waiting_too_long_for_a_turn_of_their_own_are_given_up(
    may_wait: float | None, given_up: int
) -> None:
    class SlowAlone(Writer):
        async def write_alone(self, call: str) -> str:
            await asyncio.sleep(0.2)  # a lone write kept waiting for a lock
            self.alone.append(call)
            return f"alone:{call}"

    writer = SlowAlone(outcome=lambda call: ALONE)
    arrived: dict[str, float] = {}  # each call may wait `may_wait` in all from when it was submitted

    def time_left(call: str) -> float:
        assert may_wait is not None
        return arrived[call] + may_wait - time.monotonic()

    def submit(call: str) -> Any:
        arrived[call] = time.monotonic()
        return group.submit(call)

    group: GroupCommit[str, str] = GroupCommit(
        writer.write_batch,
        writer.write_alone,
        max_alone=1,
        time_left=None if may_wait is None else time_left,
        no_turn=NoTurn,
    )
    results = await asyncio.gather(*(submit(f"c{i}") for i in range(4)), return_exceptions=True)
    assert sum(isinstance(r, NoTurn) for r in results) == given_up
    assert len(writer.alone) == 4 - given_up  # those given up were never written
    # Every turn is back: a later call gets one.
    assert await submit("later") == "alone:later"
    await group.aclose()
