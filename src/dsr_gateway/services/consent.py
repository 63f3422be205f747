"""Use cases of the consent ledger: set choices, withdraw, read preferences and history, check in batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dsr_gateway.domain.consent import (
    ANY,
    Actor,
    ConsentEvent,
    ConsentMethod,
    ConsentRecord,
    ConsentView,
    Decision,
    NewConsentEvent,
    decider,
    preferences,
)
from dsr_gateway.domain.consent_feed import (
    feed_cursor,
    history_cursor,
    page_size,
    parse_feed_cursor,
    parse_history_cursor,
)
from dsr_gateway.domain.consent_rules import (
    actor_for,
    method_for,
    require_consent_check,
    require_consent_read,
    require_consent_write,
    scope_problems,
    validate_idempotency_key,
)
from dsr_gateway.domain.errors import Conflict, HeldTooLong, NotFound, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.subjects import validate_external_id
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.consent_writes import (
    BatchWriter,
    ConsentChange,
    NotNow,
    SetCall,
    SetConsentsRequest,
    WithdrawCall,
    WithdrawRequest,
    WriteCall,
    change,
    write_events,
)
from dsr_gateway.services.group_commit import ALONE, ALONE_UNHELD, MAX_ALONE, GroupCommit, MustWait
from dsr_gateway.services.ports import Clock, ConsentReader, LedgerEntry, UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)
MAX_CHECK_IDS = 10_000
WRITE_ATTEMPTS = 3
MIN_LOCK_WAIT = 0.01  # seconds: less left of the lock timeout, and the call gives up without trying
# How long a call written on its own without being known to wait (its subject to be created) may wait
# for a lock before it moves to the turns of calls that may wait long (an import creating its subject).
UNHELD_LOCK_WAIT = 0.1
# A call that waited the lock timeout for a turn to be written on its own (the turns taken by writes that
# wait for subjects an import holds, or for new subjects behind them).
NO_TURN = (
    "Too many changes are waiting for records held by a longer change still under way (a consent import, "
    "for example); nothing of this one was saved: send it again in a little while."
)


@dataclass(frozen=True, slots=True)
class EventPage:
    entries: list[tuple[str, LedgerEntry]]
    has_next_page: bool
    end_cursor: str | None


class ConsentService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        reader: ConsentReader,
        *,
        effects: ConsentEffects | None = None,
        batch_uow: UnitOfWorkFactory | None = None,
        on_write_batch: Callable[[int], None] | None = None,
        lock_timeout: float = 0.0,
        batches_at_once: int = 1,
        max_alone: int = MAX_ALONE,
    ) -> None:
        """`batch_uow`: the unit of work for setConsents and withdrawConsent calls written together
        (services/group_commit.py); without it each call is written on its own. `on_write_batch(size)`:
        each batch's size (a metric). `lock_timeout`: the longest a call waits for its subject while
        another transaction holds it (an import), in seconds (0: no limit); then HeldTooLong.
        `batches_at_once`: batches written at once (more than one only where a batch never waits for
        another: PostgreSQL's SKIP LOCKED); `max_alone`: calls of each kind written on their own at once
        (services/group_commit.py)."""
        self._uow = uow
        self._clock = clock
        self._reader = reader
        self._lock_timeout = lock_timeout
        # The webhook of every change (services/comms).
        self._effects = effects or ConsentEffects(clock, None)
        self._group: GroupCommit[WriteCall, ConsentChange] | None = None
        if batch_uow is not None:
            batches = BatchWriter(batch_uow, clock, self._effects, self._unless_waiting)
            self._group = GroupCommit(
                batches,
                self._write_alone,
                write_unheld=self._write_unheld,
                max_alone=max_alone,
                on_batch=on_write_batch,
                # One deadline: the waits for a turn count against the call's lock timeout, as its batch did.
                time_left=self._time_left if lock_timeout else None,
                no_turn=lambda: HeldTooLong(NO_TURN),
                batches_at_once=batches_at_once,
            )

    async def aclose(self) -> None:
        """Wait for the calls still being written (at shutdown, before the engine goes)."""
        if self._group is not None:
            await self._group.aclose()

    # --- writes ---------------------------------------------------------------------------------------

    async def set_consents(self, principal: Principal, request: SetConsentsRequest) -> ConsentChange:
        """Several separate choices for one subject, all recorded or none."""
        return await self._submit(SetCall(request, *_caller(principal, request)))

    async def withdraw(self, principal: Principal, request: WithdrawRequest) -> ConsentChange:
        """Withdraw (or object to) one topic/channel, a whole purpose, or every purpose."""
        caller = _caller(principal, request)
        if request.purpose is None and (request.topic != ANY or request.channel != ANY):
            raise ValidationFailed.single("purpose", "name the purpose the topic or channel belongs to")
        return await self._submit(WithdrawCall(request, *caller))

    async def _submit(self, call: WriteCall) -> ConsentChange:
        if self._group is not None:
            return await self._group.submit(call)
        return await self._write_alone(call)

    async def _write_alone(self, call: WriteCall) -> ConsentChange:
        return await _retried(lambda: self._write(call))

    async def _write_unheld(self, call: WriteCall) -> ConsentChange:
        """A call no other writer was known to hold up (its subject to be created): MustWait when it
        waited UNHELD_LOCK_WAIT after all (an import is creating its subject) and has time left to wait."""
        try:
            return await _retried(lambda: self._write(call, most_wait=UNHELD_LOCK_WAIT))
        except HeldTooLong as exc:
            if self._lock_timeout and self._time_left(call) < MIN_LOCK_WAIT:
                raise
            raise MustWait from exc

    def _time_left(self, call: WriteCall) -> float:
        return self._lock_timeout - (time.monotonic() - call.arrived)

    async def _unless_waiting(self, call: WriteCall) -> Any:
        """One call written now, or to be written on its own: ALONE when its subject is held by another
        writer or it lost a race (a Conflict: nothing recorded, its own task retries it), ALONE_UNHELD when
        its subject is to be created. Any other error is the call's own: it may have come with or after
        COMMIT, so the call is not run again."""
        try:
            return await self._write(call, wait=False)
        except NotNow as not_now:
            return ALONE if not_now.held else ALONE_UNHELD  # held calls must not take a new one's turns
        except Conflict:
            return ALONE
        except Exception as exc:  # its own error (a refusal; or, as for any lone call, one not run again)
            return exc

    async def _write(
        self, call: WriteCall, *, wait: bool = True, most_wait: float | None = None
    ) -> ConsentChange:
        """One call in a transaction of its own. Without `wait`, NotNow when the subject is held by another
        writer or not created yet. `most_wait`: the longest it may wait for a lock (then HeldTooLong),
        however much of the lock timeout is left."""
        external_id, key = call.external_id, call.key
        async with self._uow() as uow:
            if wait and (self._lock_timeout or most_wait):
                # Bounded: an import holds its subjects until it commits (a batch and the one-call path
                # never wait: they skip a held subject and send its call here). What the call waited
                # already (for a turn, its batch) counts.
                left = self._time_left(call) if self._lock_timeout else float("inf")
                if left < MIN_LOCK_WAIT:
                    raise HeldTooLong(NO_TURN)
                await uow.consents.limit_lock_wait(min(left, most_wait or left))
            # An existing subject is locked by the statement that reads the catalogue (one round trip);
            # a new one is created and locked once the call is valid.
            found, listed, stated, held = await uow.consents.lock_with_catalogue(
                external_id, call.notice_version, wait=wait
            )
            if found is None and not wait:
                raise NotNow(held)
            purposes = {p.key: p for p in listed}
            planned = call.checked(purposes, stated)
            subject_id = (
                found if found is not None else await uow.consents.lock_subject(external_id, self._clock())
            )
            if key is not None:
                previous = await uow.consents.events_for_key(subject_id, key)
                if call.is_replay(previous, planned):
                    return await self._replay(uow, external_id, subject_id, previous, purposes)
            current = (await uow.consents.states([subject_id]))[subject_id]
            # The time is taken under the subject's lock, so a subject's events are in time order.
            now = self._clock()
            events = call.events(planned, purposes, current, now)
            if not events:  # a withdrawal of what is refused already (an unsubscribe link clicked twice)
                return change(external_id, [], False, purposes, current, now)
            return await self._record(uow, external_id, subject_id, events, purposes, current)

    async def _record(
        self,
        uow: UnitOfWork,
        external_id: str,
        subject_id: int,
        events: list[NewConsentEvent],
        purposes: dict[str, Purpose],
        current: list[ConsentRecord] | None = None,
    ) -> ConsentChange:
        if current is None:
            current = (await uow.consents.states([subject_id]))[subject_id]
        saved, records = await write_events(uow, self._effects, external_id, subject_id, events, current)
        await uow.commit()
        return change(external_id, saved, False, purposes, records, self._clock())

    async def _replay(
        self,
        uow: UnitOfWork,
        external_id: str,
        subject_id: int,
        previous: list[ConsentEvent],
        purposes: dict[str, Purpose],
    ) -> ConsentChange:
        current = (await uow.consents.states([subject_id]))[subject_id]
        return change(external_id, previous, True, purposes, current, self._clock())

    # --- reads ----------------------------------------------------------------------------------------

    async def check(
        self,
        principal: Principal,
        purpose: str,
        external_ids: Sequence[str],
        topic: str | None = None,
        channel: str | None = None,
    ) -> list[Decision]:
        """One decision per id, in the order given; one database round trip whatever the count."""
        require_consent_check(principal)
        if len(external_ids) > MAX_CHECK_IDS:
            raise ValidationFailed.single(
                "subjectIds",
                f"at most {MAX_CHECK_IDS:,} ids per call (got {len(external_ids):,}); split the batch",
            )
        topic, channel = topic or ANY, channel or ANY
        rows = await self._reader.check(purpose, external_ids, topic, channel)
        if rows is None:
            raise NotFound("purpose", purpose)
        problems = scope_problems("", rows.purpose, topic, channel, choosing=False)
        if problems:
            raise ValidationFailed(problems)
        found = rows.records
        decision = decider(rows.purpose, self._clock(), topic, channel)
        # Every subject without a record in scope (unknown ones too) gets the same answer: decided once.
        unrecorded = decision(())
        return [unrecorded if (records := found.get(i)) is None else decision(records) for i in external_ids]

    async def preferences_of(self, external_ids: Sequence[str]) -> list[list[ConsentView]]:
        """Each subject's preferences (DataLoader batch: two statements for any number of subjects)."""
        purposes = await self._reader.purposes()
        states = await self._reader.states(external_ids)
        now = self._clock()
        return [preferences(purposes, states.get(e, []), now) for e in external_ids]

    async def events(
        self,
        principal: Principal,
        external_id: str | None,
        since: str | None,
        first: int | None,
        after: str | None,
    ) -> EventPage:
        """The ledger newest first, or with `since` the changes feed in commit order."""
        if external_id is None and principal.kind is PrincipalKind.SUBJECT:
            external_id = principal.id
        require_consent_read(principal, external_id)
        size = page_size(first)
        if since is not None:
            if after is not None:
                raise ValidationFailed.single("after", "a changes feed continues with since=<endCursor>")
            position = parse_feed_cursor(since)
            entries = await self._reader.feed(external_id, size + 1, position)
            page = [(feed_cursor(e.position), e) for e in entries[:size]]
            end = page[-1][0] if page else feed_cursor(position)
            return EventPage(page, len(entries) > size, end)
        before = parse_history_cursor(after) if after is not None else None
        entries = await self._reader.history(external_id, size + 1, before)
        page = [(history_cursor(e.event.id), e) for e in entries[:size]]
        return EventPage(page, len(entries) > size, page[-1][0] if page else None)


def _caller(
    principal: Principal, request: SetConsentsRequest | WithdrawRequest
) -> tuple[str, Actor, ConsentMethod, str | None]:
    """The call's subject, actor, method and idempotency key, once the principal may write for it."""
    external_id = validate_external_id(request.external_id, "subjectId")
    require_consent_write(principal, external_id)
    actor = actor_for(principal)
    method = method_for(principal, request.method)
    return external_id, actor, method, validate_idempotency_key(request.idempotency_key)


async def _retried(attempt: Callable[[], Awaitable[ConsentChange]]) -> ConsentChange:
    """Run a consent write again when the database gave it up for a concurrent one (a deadlock, a chain
    place taken in between: Conflict from the unit of work, nothing recorded), up to WRITE_ATTEMPTS times."""
    for _ in range(WRITE_ATTEMPTS - 1):
        try:
            return await attempt()
        except HeldTooLong:
            raise  # it waited its lock timeout already: the caller sends it again later
        except Conflict:
            continue
    return await attempt()
