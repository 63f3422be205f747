"""The setConsents and withdrawConsent calls, what a write answers, and several calls written together.

`BatchWriter` writes the calls that GroupCommit (services/group_commit.py) gathered into one
transaction; `ConsentService` (services/consent.py) checks each call and writes a lone one itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from dsr_gateway.domain.consent import (
    ANY,
    Actor,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    ConsentRecord,
    ConsentStatus,
    ConsentView,
    NewConsentEvent,
    Origin,
    Scope,
    apply,
    preferences,
)
from dsr_gateway.domain.consent_rules import (
    ConsentChoice,
    action_for,
    is_same_withdrawal,
    scope_problems,
    validate_choices,
    withdrawal_scopes,
)
from dsr_gateway.domain.errors import DomainError, ValidationFailed
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.group_commit import ALONE, ALONE_UNHELD, OutcomeUnknown
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger("dsr_gateway.services.consent")
NO_ORIGIN = Origin()


@dataclass(frozen=True, slots=True)
class SetConsentsRequest:
    external_id: str
    choices: Sequence[ConsentChoice]
    method: ConsentMethod | None = None
    notice_version: int | None = None
    origin: Origin = NO_ORIGIN
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawRequest:
    """One purpose (optionally one topic and/or channel of it), or everything when purpose is None."""

    external_id: str
    purpose: str | None = None
    topic: str = ANY
    channel: str = ANY
    method: ConsentMethod | None = None
    origin: Origin = NO_ORIGIN
    idempotency_key: str | None = None
    # Record nothing for a scope already refused (an unsubscribe link clicked twice): decided under the
    # subject's lock, so two clicks at once record one withdrawal.
    unless_refused: bool = False


@dataclass(frozen=True)
class ConsentChange:
    """What a write recorded, and the subject's preferences afterwards (`consents`), worked out when first
    read: most writers never ask for them, and a batch of writes would work them out in its turn."""

    external_id: str
    events: list[ConsentEvent]
    # True when the idempotency key had been used: these are the first call's events, nothing new.
    replayed: bool
    purposes: tuple[Purpose, ...] = field(repr=False)
    records: tuple[ConsentRecord, ...] = field(repr=False)
    at: datetime = field(repr=False)

    @cached_property
    def consents(self) -> list[ConsentView]:
        return preferences(self.purposes, self.records, self.at)


def change(
    external_id: str,
    events: list[ConsentEvent],
    replayed: bool,
    purposes: dict[str, Purpose],
    records: Iterable[ConsentRecord],
    at: datetime,
) -> ConsentChange:
    return ConsentChange(external_id, events, replayed, tuple(purposes.values()), tuple(records), at)


class NotNow(Exception):
    """The call's subject is held by another writer (`held`), or not created yet: write it on its own."""

    def __init__(self, held: bool) -> None:
        super().__init__("held by another writer" if held else "not created yet")
        self.held = held


@dataclass(frozen=True, slots=True)
class SetCall:
    """A setConsents call waiting to be written (alone or in a batch), its caller's rights checked."""

    request: SetConsentsRequest
    external_id: str
    actor: Actor
    method: ConsentMethod
    key: str | None
    # When the call came in (monotonic): a call's waits, for a turn and for its subject, add up to at most
    # the lock timeout.
    arrived: float = field(default_factory=time.monotonic)

    @property
    def notice_version(self) -> int | None:
        return self.request.notice_version

    def checked(self, purposes: dict[str, Purpose], stated: set[str] | None) -> Choices:
        """The choices as (scope, action), or ValidationFailed naming the choice refused."""
        request = self.request
        return validate_choices(request.choices, purposes, self.method, request.notice_version, stated)

    def is_replay(self, previous: list[ConsentEvent], planned: Choices) -> bool:
        return replays(previous, planned)

    def events(
        self, planned: Choices, purposes: dict[str, Purpose], current: Iterable[ConsentRecord], now: datetime
    ) -> list[NewConsentEvent]:
        """The call's planned choices as events, recorded at `now` (taken under the subject's lock)."""
        version, origin = self.request.notice_version, self.request.origin
        return live_events(planned, self.method, version, origin, self.actor, now, self.key)


@dataclass(frozen=True, slots=True)
class WithdrawCall:
    """A withdrawConsent call waiting to be written (alone or in a batch), its caller's rights checked."""

    request: WithdrawRequest
    external_id: str
    actor: Actor
    method: ConsentMethod
    key: str | None
    arrived: float = field(default_factory=time.monotonic)  # as SetCall's
    notice_version: ClassVar[None] = None  # a withdrawal names no notice

    def checked(self, purposes: dict[str, Purpose], stated: set[str] | None) -> Choices:
        """Nothing planned yet (what is withdrawn depends on the subject's records): the purpose, topic and
        channel named, or ValidationFailed."""
        request = self.request
        if request.purpose is not None:
            purpose = purposes.get(request.purpose)
            if purpose is None:
                raise ValidationFailed.single("purpose", f"no purpose {request.purpose!r}")
            problems = scope_problems("", purpose, request.topic, request.channel)
            if problems:
                raise ValidationFailed(problems)
        return []

    def is_replay(self, previous: list[ConsentEvent], planned: Choices) -> bool:
        """True when the key recorded this withdrawal; refused when it recorded another call."""
        if not previous:
            return False
        request = self.request
        scopes, actions = {e.scope for e in previous}, [e.action for e in previous]
        if not is_same_withdrawal(scopes, actions, request.purpose, request.topic, request.channel):
            raise ValidationFailed.single(
                "idempotencyKey", "this key was used for a different call; use a new key"
            )
        return True

    def events(
        self, planned: Choices, purposes: dict[str, Purpose], current: Iterable[ConsentRecord], now: datetime
    ) -> list[NewConsentEvent]:
        """The withdrawals of the subject's records, at `now` (taken under the subject's lock); none for a
        scope already refused when the call says so (an unsubscribe link clicked twice)."""
        request, records = self.request, list(current)
        targets = withdrawal_scopes(request.purpose, request.topic, request.channel, purposes, records)
        if request.unless_refused:
            refused = {r.scope for r in records if r.status is not ConsentStatus.GRANTED}
            targets = [t for t in targets if t not in refused]
        choices = [(scope, action_for(purposes[scope.purpose], False)) for scope in targets]
        return live_events(choices, self.method, None, request.origin, self.actor, now, self.key)


WriteCall = SetCall | WithdrawCall
# A call's choices as (scope, action): a setConsents call's, checked before anything is read.
Choices = list[tuple[Scope, ConsentAction]]


def live_events(
    choices: Iterable[tuple[Scope, ConsentAction]],
    method: ConsentMethod,
    notice_version: int | None,
    origin: Origin,
    actor: Actor,
    now: datetime,
    key: str | None,
) -> list[NewConsentEvent]:
    """One call's choices as events: a live choice occurs when it is recorded (`now`, under the lock)."""
    return [
        NewConsentEvent(scope, action, method, notice_version, origin, actor, now, now, key)
        for scope, action in choices
    ]


class BatchWriter:
    """Writes the setConsents and withdrawConsent calls gathered by GroupCommit. `write_one` writes a call
    that is alone in its batch (the one-call path), or answers that it must be written on its own (ALONE,
    ALONE_UNHELD: services/group_commit.py) when that call would have to wait."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        effects: ConsentEffects,
        write_one: Callable[[WriteCall], Awaitable[Any]],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._effects = effects
        self._write_one = write_one
        # The subjects locked by the batches being written (two may be at once): a call whose subject
        # another of them holds waits only for that batch, not as for a subject an import holds.
        self._in_batches: set[str] = set()

    async def __call__(self, calls: Sequence[WriteCall]) -> list[Any]:
        """Several calls in one transaction, each all or nothing (as ConsentService writes one): their
        subjects locked by one statement that skips subjects another writer holds (the batch never waits:
        services/group_commit.py), their states read together, their events appended and the projection
        written once. Per call: its ConsentChange, its own DomainError (nothing of it recorded), ALONE for a
        subject another writer holds, or ALONE_UNHELD for a subject not created yet or already in the batch
        (one call per subject and transaction: the follower makes one receipt per subject, transaction and
        time)."""
        if len(calls) == 1:  # alone in its batch: the one-call path, on the driver, if it need not wait
            return [await self._one(calls[0])]
        committed = False
        batch: _Batch | None = None
        try:
            async with self._uow() as uow:
                batch = await self._locked(uow, calls)
                await batch.plan(uow)
                written = await batch.record(uow)
                for index, recorded, _ in written:
                    if recorded:  # not a withdrawal of what was refused already
                        await self._effects.after_change(uow, calls[index].external_id, recorded)
                # The answers are made before COMMIT: once it is sent nothing may fail and have the calls run
                # again (GroupCommit reruns a failed batch's calls alone: they would be recorded twice).
                batch.answer(written)
                await _commit_once(uow)
                committed = True
        except Exception:
            if not committed:
                raise
            # Recorded: closing the unit of work failed after COMMIT. The answers stand.
            logger.warning("closing a committed batch's unit of work failed", exc_info=True)
        finally:
            if batch is not None:
                self._in_batches.difference_update(batch.ids)
        assert batch is not None  # committed: _locked returned it
        return batch.outcomes

    async def _one(self, call: WriteCall) -> Any:
        """The one-call path, its subject counted among the batches' while it runs; a subject held only
        by the other batch of ours is not held as an import holds it."""
        subject = call.external_id
        theirs = subject in self._in_batches
        if not theirs:
            self._in_batches.add(subject)
        try:
            outcome = await self._write_one(call)
        finally:
            if not theirs:
                self._in_batches.discard(subject)
        return ALONE_UNHELD if outcome is ALONE and theirs else outcome

    async def _locked(self, uow: UnitOfWork, calls: Sequence[WriteCall]) -> _Batch:
        """The calls' subjects locked (those it can), the catalogues they name and the subjects' states."""
        ids, held = await uow.consents.lock_many([c.external_id for c in calls])
        held -= self._in_batches  # held by a batch of ours: it commits in a moment
        self._in_batches.update(ids)
        try:
            catalogues: dict[int | None, tuple[dict[str, Purpose], set[str] | None]] = {}
            for version in {c.notice_version for c in calls}:
                listed, stated = await uow.consents.purposes_and_notice(version)
                catalogues[version] = ({p.key: p for p in listed}, stated)
            stored = await uow.consents.locked_states(sorted(set(ids.values()))) if ids else {}
        except BaseException:
            self._in_batches.difference_update(ids)  # __call__ forgets them once it has the batch
            raise
        states = {s: {r.scope: r for r in records} for s, records in stored.items()}
        # Until decided, a call is written on its own: one that may wait (its subject held by another
        # writer) apart from the others (a subject to create; a second call for a subject of the batch).
        outcomes = [ALONE if c.external_id in held else ALONE_UNHELD for c in calls]
        # The time is taken under the subjects' locks, so each subject's events are in time order.
        return _Batch(calls, ids, catalogues, states, self._clock(), outcomes)


# A call's place in its batch, its subject, and its events (to record, or recorded before: a replay).
Planned = tuple[int, int, list[NewConsentEvent]]
Replayed = tuple[int, int, list[ConsentEvent]]
# A call's place, the events recorded for it, and its subject's records after them.
Written = tuple[int, list[ConsentEvent], tuple[ConsentRecord, ...]]


@dataclass
class _Batch:
    """One batch inside its transaction: what each call becomes (`outcomes`: written on its own until
    decided)."""

    calls: Sequence[WriteCall]
    ids: dict[str, int]  # the subjects locked
    catalogues: dict[int | None, tuple[dict[str, Purpose], set[str] | None]]
    states: dict[int, dict[Scope, ConsentRecord]]
    now: datetime
    outcomes: list[Any]
    planned: list[Planned] = field(default_factory=list)
    replayed: list[Replayed] = field(default_factory=list)

    async def plan(self, uow: UnitOfWork) -> None:
        """Each call checked: its events planned, a replay of its key found, or its DomainError. The keyed
        calls' earlier events are read in one statement."""
        taken: set[int] = set()  # one call per subject: the follower makes one receipt per transaction
        checked: list[tuple[int, WriteCall, int, dict[str, Purpose], Choices]] = []
        for index, call in enumerate(self.calls):
            subject_id = self.ids.get(call.external_id)
            if subject_id is None or subject_id in taken:
                continue  # on its own: held, to be created, or a second call for the subject
            purposes, stated = self.catalogues[call.notice_version]
            try:
                planned = call.checked(purposes, stated)
            except DomainError as exc:
                self.outcomes[index] = exc
                continue
            taken.add(subject_id)
            checked.append((index, call, subject_id, purposes, planned))
        keys = [(subject_id, call.key) for _, call, subject_id, _, _ in checked if call.key is not None]
        earlier = await uow.consents.events_for_keys(keys) if keys else {}
        for index, call, subject_id, purposes, planned in checked:
            if call.key is not None:
                previous = earlier[(subject_id, call.key)]
                try:
                    if call.is_replay(previous, planned):
                        self.replayed.append((index, subject_id, previous))
                        continue
                except DomainError as exc:
                    self.outcomes[index] = exc
                    continue
            current = self.states.get(subject_id, {}).values()
            self.planned.append((index, subject_id, call.events(planned, purposes, current, self.now)))

    async def record(self, uow: UnitOfWork) -> list[Written]:
        """Every planned event appended in one go and the projection written once; per call its recorded
        events and its subject's records after them."""
        pairs = [(subject_id, event) for _, subject_id, events in self.planned for event in events]
        saved = iter(await uow.consents.append(pairs) if pairs else [])
        changed: dict[tuple[int, Scope], ConsentRecord] = {}
        written: list[Written] = []
        for index, subject_id, events in self.planned:
            recorded = [next(saved) for _ in events]
            state = self.states.setdefault(subject_id, {})
            for scope, record in fold_into(state, recorded).items():
                changed[(subject_id, scope)] = record
            written.append((index, recorded, tuple(state.values())))
        await uow.consents.save_states([(s, r) for (s, _), r in changed.items()])
        return written

    def answer(self, written: list[Written]) -> None:
        """The ConsentChange of each recorded call and of each replay."""
        for index, recorded, records in written:
            purposes, _ = self.catalogues[self.calls[index].notice_version]
            self.outcomes[index] = change(
                self.calls[index].external_id, recorded, False, purposes, records, self.now
            )
        for index, subject_id, previous in self.replayed:
            purposes, _ = self.catalogues[self.calls[index].notice_version]
            current = self.states.get(subject_id, {}).values()
            self.outcomes[index] = change(
                self.calls[index].external_id, previous, True, purposes, current, self.now
            )


def fold_into(
    state: dict[Scope, ConsentRecord], events: Iterable[ConsentEvent]
) -> dict[Scope, ConsentRecord]:
    """Fold recorded events into a subject's state (in place); the records they changed, by scope."""
    changed: dict[Scope, ConsentRecord] = {}
    for event in events:
        state[event.scope] = changed[event.scope] = apply(state.get(event.scope), event)
    return changed


async def write_events(
    uow: UnitOfWork,
    effects: ConsentEffects,
    external_id: str,
    subject_id: int,
    events: Sequence[NewConsentEvent],
    current: Iterable[ConsentRecord],
) -> tuple[list[ConsentEvent], list[ConsentRecord]]:
    """Append one subject's events, project them and set off their effects; the caller holds the subject's
    lock and commits. The recorded events, and the subject's records after them."""
    saved = await uow.consents.append([(subject_id, e) for e in events])
    state = {r.scope: r for r in current}
    changed = fold_into(state, saved)
    await uow.consents.save_states([(subject_id, r) for r in changed.values()])
    # The receipt and the message follow from the ledger once this commits (consent_followups.py).
    await effects.after_change(uow, external_id, saved)
    return saved, list(state.values())


def replays(previous: list[ConsentEvent], planned: list[tuple[Scope, ConsentAction]]) -> bool:
    """True when the call's idempotency key already recorded these choices (the call is a replay);
    refused when the key recorded other choices; False when it recorded nothing yet."""
    if not previous:
        return False
    if [(e.scope, e.action) for e in previous] != planned:
        raise ValidationFailed.single(
            "idempotencyKey", "this key was used for different choices; use a new key"
        )
    return True


async def _commit_once(uow: UnitOfWork) -> None:
    """COMMIT a batch. Its writes are sent first (a failure there is a plain failure: nothing recorded,
    the calls may run again); if COMMIT itself fails, the batch may be recorded or not, so its calls must
    not run again."""
    await uow.flush()
    try:
        await uow.commit()
    except Exception as exc:
        raise OutcomeUnknown from exc
