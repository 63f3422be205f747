"""consentCheck reads: noted per distinct read per window, written in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from dsr_gateway.services.accountability_ports import DataAccess
from dsr_gateway.services.audit_trail import AccessBatcher

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Store:
    """Only what the batcher uses of the audit trail store: appending rows."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.rows: list[DataAccess] = []
        self.calls = 0
        self.fail_after = fail_after

    async def add_accesses(self, accesses: Sequence[DataAccess]) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise ConnectionError("database went away")
        self.rows.extend(accesses)


def rows(store: Store) -> set[tuple[datetime, str, str, str, str, str | None]]:
    return {
        (r.occurred_at, r.actor_kind, r.actor_id, r.operation, r.what, r.subject_external_id)
        for r in store.rows
    }


async def test_a_read_repeated_within_the_window_is_one_row_dated_at_the_windows_first_read() -> None:
    clock, store = Clock(), Store()
    batcher = AccessBatcher(store, clock)  # type: ignore[arg-type]
    clock.now = T0 + timedelta(seconds=5)
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", ["a", "b", "a"])
    clock.now = T0 + timedelta(seconds=30)
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", ["b", "c"])
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:sms", ["a"])  # another purpose: another read
    batcher.note("STAFF", "agent-1", "anonymous", "consentCheck:email", ["a"])  # another reader

    assert await batcher.flush() == 5
    first = T0 + timedelta(seconds=5)
    assert rows(store) == {
        (first, "API_CLIENT", "shop", "Check", "consentCheck:email", "a"),
        (first, "API_CLIENT", "shop", "Check", "consentCheck:email", "b"),
        (first, "API_CLIENT", "shop", "Check", "consentCheck:email", "c"),
        (first, "API_CLIENT", "shop", "Check", "consentCheck:sms", "a"),
        (first, "STAFF", "agent-1", "anonymous", "consentCheck:email", "a"),
    }
    assert all(r.request_id is None for r in store.rows)


async def test_the_next_window_records_the_same_read_again_at_its_own_time() -> None:
    clock, store = Clock(), Store()
    batcher = AccessBatcher(store, clock)  # type: ignore[arg-type]
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", ["a"])
    await batcher.flush()
    assert await batcher.flush() == 0  # nothing new: nothing written
    clock.now = T0 + timedelta(minutes=2)
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", ["a"])
    await batcher.flush()
    assert [r.occurred_at for r in store.rows] == [T0, T0 + timedelta(minutes=2)]


async def test_rows_a_failed_write_left_are_written_by_the_next_flush(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(fail_after=2)
    batcher = AccessBatcher(store, Clock(), chunk=10)  # type: ignore[arg-type]
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", [f"s{i}" for i in range(35)])
    assert await batcher.flush() == 20  # two chunks of 10 written, the third failed
    assert "could not record 15 personal-data reads; kept for the next write" in caplog.text
    assert "s1" not in caplog.text  # no subject id in the log
    store.fail_after = None  # the database answers again
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", ["late"])
    assert await batcher.flush() == 16
    assert {r.subject_external_id for r in store.rows} == {f"s{i}" for i in range(35)} | {"late"}
    assert batcher.lost == 0


async def test_memory_is_bounded_reads_past_the_limit_are_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(fail_after=0)  # the database is down
    batcher = AccessBatcher(store, Clock(), limit=50, chunk=10)  # type: ignore[arg-type]
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", [f"a{i}" for i in range(40)])
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", [f"b{i}" for i in range(40)])
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", [f"c{i}" for i in range(5)])
    assert batcher.lost == 5  # 80 waiting reads reached the limit of 50 before the third call
    assert await batcher.flush() == 0
    assert batcher.lost == 5 + 30  # 80 left by the failed write; 50 kept for the next one
    assert "reads not recorded so far" in caplog.text
    store.fail_after = None
    assert await batcher.flush() == 50


async def test_the_background_task_writes_early_when_too_many_reads_wait_and_once_more_at_stop() -> None:
    store = Store()
    batcher = AccessBatcher(store, Clock(), window=3600, max_pending=100)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(batcher.run(stop))
    await asyncio.sleep(0)
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", [f"s{i}" for i in range(100)])
    for _ in range(100):  # long before the hour-long window ends
        if len(store.rows) == 100:
            break
        await asyncio.sleep(0.01)
    assert len(store.rows) == 100
    batcher.note("API_CLIENT", "shop", "Check", "consentCheck:email", ["late"])
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert store.rows[-1].subject_external_id == "late"
