"""Calls made at the same time, written together: one transaction per batch (group commit).

While a batch is being written, the calls that arrive wait; the next batch takes every waiting call (up to
`max_batch`; a call that finds nothing else waiting is a batch of one, which the writer may write its own,
cheaper way). Under load the database's round trips, BEGIN and COMMIT are shared by the batch. The batch
writer returns, per call, its result, its own error (raised to that caller only), or that the call cannot
join a batch and is run on its own, in a task of its own, so that it waits without holding up the batches
after it: ALONE when it may wait long for another writer (e.g. its subject is held by an import),
ALONE_UNHELD when nothing is known to hold it up (e.g. its subject is to be created). Each kind has its own
`max_alone` turns, so calls kept waiting never take the turns of those that would be written at once; an
ALONE_UNHELD call that turns out to wait (its writer raises MustWait) moves to a turn of the other kind.
When the batch fails before its COMMIT, every call in it is run on its own, so a call fails only for a
reason of its own; when the COMMIT itself failed (OutcomeUnknown) the calls may be recorded, and each
caller gets the error instead. The batch writer must never wait for other writers, including the other
batches being written: at most `batches_at_once` are (PostgreSQL: two, so that one batch's round trips
and COMMIT overlap the next batch's; SQLite serialises its writers: one).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)
Call = TypeVar("Call")
Result = TypeVar("Result")
MAX_BATCH = 64
# Calls of each kind written on their own at once: with two batches, 8 of the default pool's 10 connections.
MAX_ALONE = 3
STOPPED = "the gateway stopped while writing this call"


class OutcomeUnknown(Exception):
    """Raised by a batch writer whose COMMIT was sent and failed: the batch may be recorded, so its calls
    are not run again; each caller gets the error that caused it (as a lone call would)."""


class MustWait(Exception):
    """Raised by the writer of an ALONE_UNHELD call that found it would have to wait for another writer
    after all (nothing of it written): the call is written again, as ALONE."""


def turns_for_pool(pool_size: int, batches_at_once: int) -> int:
    """`max_alone` for a pool of this many connections: each kind of lone call may hold one per turn, the
    batches one each, and two are left for other work; at least one turn, at most MAX_ALONE."""
    return max(1, min(MAX_ALONE, (pool_size - batches_at_once - 2) // 2))


class _Alone:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


ALONE: Any = _Alone("ALONE")
ALONE_UNHELD: Any = _Alone("ALONE_UNHELD")


class GroupCommit(Generic[Call, Result]):
    def __init__(
        self,
        write_batch: Callable[[Sequence[Call]], Awaitable[Sequence[Any]]],
        write_alone: Callable[[Call], Awaitable[Result]],
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[int], None] | None = None,
        max_alone: int = MAX_ALONE,
        time_left: Callable[[Call], float] | None = None,
        no_turn: Callable[[], Exception] = TimeoutError,
        batches_at_once: int = 1,
        write_unheld: Callable[[Call], Awaitable[Result]] | None = None,
    ) -> None:
        """`write_unheld` writes an ALONE_UNHELD call (default: `write_alone`); it may raise MustWait.
        `on_batch(size)` is told the number of calls of every batch written (a metric). At most
        `max_alone` calls of each kind (ALONE, ALONE_UNHELD) are written on their own at once (each may
        hold a pooled connection while it waits for a lock); the others wait for a turn without one, at
        most `time_left(call)` seconds (how long the call may still wait in all, its batch and any turn
        it had before counted; None: no limit), after which the call fails with `no_turn()` (the turns are
        taken by calls kept waiting themselves: those behind them would wait turn after turn).
        While `batches_at_once` batches are being written, the calls arriving wait for the first of them
        to end."""
        self._on_batch = on_batch
        self._write_batch = write_batch
        self._write_alone = write_alone
        self._write_unheld = write_unheld or write_alone
        self._max_batch = max_batch
        self._turns = {ALONE: asyncio.Semaphore(max_alone), ALONE_UNHELD: asyncio.Semaphore(max_alone)}
        self._time_left = time_left
        self._no_turn = no_turn
        self._waiting: list[tuple[Call, asyncio.Future[Result], contextvars.Context]] = []
        self._batches_at_once = batches_at_once
        self._drainers: set[asyncio.Task[None]] = set()  # each writes one batch at a time
        self._alone_tasks: set[asyncio.Task[None]] = set()

    async def submit(self, call: Call) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        # The caller's context (its request id in the log) goes with the call if it is written on its own.
        self._waiting.append((call, future, contextvars.copy_context()))
        if len(self._drainers) < self._batches_at_once:
            # Batches belong to no one request: a drainer runs in a context of its own.
            drainer = asyncio.create_task(self._drain(), context=contextvars.Context())
            self._drainers.add(drainer)
        return await future

    async def aclose(self) -> None:
        """Wait for the batches being written and the calls being written on their own (at shutdown, before
        the database engine goes)."""
        while self._drainers or self._alone_tasks:
            pending = [*self._drainers, *self._alone_tasks]
            await asyncio.gather(*pending, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                taken = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                taken = [t for t in taken if not t[1].done()]  # a caller gone before: nothing to write
                if taken:
                    await self._batch(taken)  # the calls arriving meanwhile make the next batch
        finally:
            drainer = asyncio.current_task()
            assert drainer is not None
            self._drainers.discard(drainer)
            if not self._drainers:  # the last drainer was stopped (shutdown): nobody will write them
                for _, future, _ in self._waiting:
                    _settle(future, error=RuntimeError("the gateway stopped before writing this call"))
                self._waiting.clear()

    async def _batch(self, taken: list[tuple[Call, asyncio.Future[Result], contextvars.Context]]) -> None:
        try:
            await self._write_taken(taken)
        except BaseException as exc:  # cancelled, or a bug here: no caller is left waiting forever
            for _, future, _ in taken:
                _settle(future, error=exc if isinstance(exc, Exception) else RuntimeError(STOPPED))
            raise

    async def _write_taken(
        self, taken: list[tuple[Call, asyncio.Future[Result], contextvars.Context]]
    ) -> None:
        if self._on_batch is not None:
            try:
                self._on_batch(len(taken))
            except Exception:
                logger.exception("recording a batch's size failed")
        try:
            outcomes = list(await self._write_batch([call for call, _, _ in taken]))
        except OutcomeUnknown as unknown:
            logger.warning("the COMMIT of a batch of %d writes failed; its outcome is unknown", len(taken))
            for _, future, _ in taken:
                _settle(future, error=unknown.__cause__ or unknown)
            return
        except Exception:
            logger.warning(
                "a batch of %d writes failed; each is written on its own", len(taken), exc_info=True
            )
            outcomes = [ALONE_UNHELD] * len(taken)  # one that must wait moves to the other turns
        for (call, future, context), outcome in zip(taken, outcomes, strict=True):
            if outcome is ALONE or outcome is ALONE_UNHELD:  # in a task of its own: it may wait for a lock
                task = asyncio.create_task(self._alone(call, future, outcome), context=context)
                self._alone_tasks.add(task)
                task.add_done_callback(self._alone_tasks.discard)
            elif isinstance(outcome, BaseException):
                _settle(future, error=outcome)
            else:
                _settle(future, result=outcome)

    async def _alone(self, call: Call, future: asyncio.Future[Result], kind: Any) -> None:
        try:
            while True:
                turns = self._turns[kind]
                left = self._time_left(call) if self._time_left is not None else None
                try:
                    if left is not None and left <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(left):
                        await turns.acquire()
                except TimeoutError:
                    _settle(future, error=self._no_turn())
                    return
                try:
                    if future.done():  # the caller went away while it waited for its turn
                        return
                    if kind is ALONE:
                        result = await self._write_alone(call)
                        break
                    try:
                        result = await self._write_unheld(call)
                        break
                    except MustWait:
                        kind = ALONE  # it would wait after all: in a turn of those that may
                finally:
                    turns.release()
        except Exception as exc:
            _settle(future, error=exc)
        except BaseException:
            _settle(future, error=RuntimeError(STOPPED))
            raise
        else:
            _settle(future, result=result)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the caller went away (cancelled): nobody waits for the outcome
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
