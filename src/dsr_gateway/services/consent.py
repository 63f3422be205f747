"""Use cases of the consent ledger: set choices, withdraw, read preferences and history, check in batch."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from dsr_gateway.domain.consent import (
    ANY,
    Actor,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    ConsentRecord,
    ConsentStatus,
    ConsentView,
    Decision,
    NewConsentEvent,
    Origin,
    Scope,
    apply,
    decider,
    needs_no_consent,
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
    ConsentChoice,
    action_for,
    actor_for,
    is_same_withdrawal,
    method_for,
    require_consent_check,
    require_consent_read,
    require_consent_write,
    scope_problems,
    validate_choices,
    validate_idempotency_key,
)
from dsr_gateway.domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.purposes import ConsentMechanism, Purpose
from dsr_gateway.domain.subjects import validate_external_id
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.group_commit import ALONE, GroupCommit, OutcomeUnknown
from dsr_gateway.services.ports import Clock, ConsentReader, LedgerEntry, UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger(__name__)
MAX_CHECK_IDS = 10_000
WRITE_ATTEMPTS = 3
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


def _change(
    external_id: str,
    events: list[ConsentEvent],
    replayed: bool,
    purposes: dict[str, Purpose],
    records: Iterable[ConsentRecord],
    at: datetime,
) -> ConsentChange:
    return ConsentChange(external_id, events, replayed, tuple(purposes.values()), tuple(records), at)


class _NotNow(Exception):
    """The call's subject is held by another writer, or not created yet: write it on its own."""


@dataclass(frozen=True, slots=True)
class _SetCall:
    """A checked setConsents call waiting to be written (alone or in a batch)."""

    request: SetConsentsRequest
    external_id: str
    actor: Actor
    method: ConsentMethod
    key: str | None

    def events(self, planned: list[tuple[Scope, ConsentAction]], now: datetime) -> list[NewConsentEvent]:
        """The call's planned choices as events, recorded at `now` (taken under the subject's lock)."""
        request = self.request
        return [
            NewConsentEvent(
                scope,
                action,
                self.method,
                request.notice_version,
                request.origin,
                self.actor,
                now,
                now,
                self.key,
            )
            for scope, action in planned
        ]


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
    ) -> None:
        """`batch_uow`: the unit of work for setConsents calls written together (services/group_commit.py);
        without it each call is written on its own. `on_write_batch(size)`: each batch's size (a metric)."""
        self._batch_uow = batch_uow
        self._group: GroupCommit[_SetCall, ConsentChange] | None = (
            GroupCommit(self._write_batch, self._write_alone, on_batch=on_write_batch)
            if batch_uow is not None
            else None
        )
        self._uow = uow
        self._clock = clock
        self._reader = reader
        # The webhook of every change (services/comms).
        self._effects = effects or ConsentEffects(clock, None)

    async def aclose(self) -> None:
        """Wait for the setConsents calls still being written (at shutdown, before the engine goes)."""
        if self._group is not None:
            await self._group.aclose()

    # --- writes ---------------------------------------------------------------------------------------

    async def set_consents(self, principal: Principal, request: SetConsentsRequest) -> ConsentChange:
        """Several separate choices for one subject, all recorded or none."""
        external_id = validate_external_id(request.external_id, "subjectId")
        require_consent_write(principal, external_id)
        actor = actor_for(principal)
        method = method_for(principal, request.method)
        key = validate_idempotency_key(request.idempotency_key)
        call = _SetCall(request, external_id, actor, method, key)
        if self._group is not None:
            return await self._group.submit(call)
        return await self._write_alone(call)

    async def _write_alone(self, call: _SetCall) -> ConsentChange:
        return await _retried(lambda: self._set_consents(call))

    async def _write_batch(self, calls: Sequence[_SetCall]) -> list[Any]:
        """Several calls in one transaction, each all or nothing (as `_set_consents` writes one): their
        subjects locked by one statement that skips subjects another writer holds (the batch never waits:
        services/group_commit.py), their states read together, their events appended and the projection
        written once. Per call: its ConsentChange, its own DomainError (nothing of it recorded), or ALONE
        for a subject not created yet, held by another writer, or already in the batch (one call per subject
        and transaction: the follower makes one receipt per subject, transaction and time)."""
        assert self._batch_uow is not None
        if len(calls) == 1:  # alone in its batch: the one-call path, on the driver, if it need not wait
            return [await self._unless_waiting(calls[0])]
        outcomes: list[Any] = [ALONE] * len(calls)
        committed = False
        try:
            async with self._batch_uow() as uow:
                ids = await uow.consents.lock_many([c.external_id for c in calls])
                catalogues: dict[int | None, tuple[dict[str, Purpose], set[str] | None]] = {}
                for version in {c.request.notice_version for c in calls}:
                    listed, stated = await uow.consents.purposes_and_notice(version)
                    catalogues[version] = ({p.key: p for p in listed}, stated)
                stored = await uow.consents.locked_states(sorted(set(ids.values()))) if ids else {}
                states = {s: {r.scope: r for r in records} for s, records in stored.items()}
                # The time is taken under the subjects' locks, so each subject's events are in time order.
                now = self._clock()
                # One call per subject: the follower makes one receipt per subject and transaction.
                taken: set[int] = set()
                planned_calls: list[tuple[int, int, list[NewConsentEvent]]] = []  # call, subject, events
                replays: list[tuple[int, int, list[ConsentEvent]]] = []
                for index, call in enumerate(calls):
                    subject_id = ids.get(call.external_id)
                    if subject_id is None or subject_id in taken:
                        continue  # ALONE: created or waited for on its own; a second call after the first
                    version = call.request.notice_version
                    purposes, stated = catalogues[version]
                    try:
                        planned = validate_choices(
                            call.request.choices, purposes, call.method, version, stated
                        )
                        taken.add(subject_id)
                        if call.key is not None:
                            previous = await uow.consents.events_for_key(subject_id, call.key)
                            if _replays(previous, planned):
                                replays.append((index, subject_id, previous))
                                continue
                    except DomainError as exc:
                        outcomes[index] = exc
                        continue
                    planned_calls.append((index, subject_id, call.events(planned, now)))
                pairs = [(subject_id, event) for _, subject_id, events in planned_calls for event in events]
                saved = iter(await uow.consents.append(pairs) if pairs else [])
                changed: dict[tuple[int, Scope], ConsentRecord] = {}
                written: list[tuple[int, list[ConsentEvent], tuple[ConsentRecord, ...]]] = []
                for index, subject_id, events in planned_calls:
                    recorded = [next(saved) for _ in events]
                    state = states.setdefault(subject_id, {})
                    for event in recorded:
                        state[event.scope] = changed[(subject_id, event.scope)] = apply(
                            state.get(event.scope), event
                        )
                    written.append((index, recorded, tuple(state.values())))
                await uow.consents.save_states([(s, r) for (s, _), r in changed.items()])
                for index, recorded, _ in written:
                    await self._effects.after_change(uow, calls[index].external_id, recorded)
                # The answers are made before COMMIT: once it is sent nothing may fail and have the calls run
                # again (GroupCommit reruns a failed batch's calls alone: they would be recorded twice).
                for index, recorded, records in written:
                    purposes, _ = catalogues[calls[index].request.notice_version]
                    outcomes[index] = _change(
                        calls[index].external_id, recorded, False, purposes, records, now
                    )
                for index, subject_id, previous in replays:
                    purposes, _ = catalogues[calls[index].request.notice_version]
                    current = states.get(subject_id, {}).values()
                    outcomes[index] = _change(
                        calls[index].external_id, previous, True, purposes, current, now
                    )
                await _commit_once(uow)
                committed = True
        except Exception:
            if not committed:
                raise
            # Recorded: closing the unit of work failed after COMMIT. The answers stand.
            logger.warning("closing a committed batch's unit of work failed", exc_info=True)
        return outcomes

    async def _unless_waiting(self, call: _SetCall) -> Any:
        """One call written now, or ALONE when it would wait (its subject held, or to be created), or lost a
        race (a Conflict: nothing recorded, its own task retries it). Any other error is the call's own: it
        may have come with or after COMMIT, so the call is not run again."""
        try:
            return await self._set_consents(call, wait=False)
        except (_NotNow, Conflict):
            return ALONE
        except Exception as exc:  # its own error (a refusal; or, as for any lone call, one not run again)
            return exc

    async def _set_consents(self, call: _SetCall, *, wait: bool = True) -> ConsentChange:
        """Without `wait`, _NotNow when the subject is held by another writer or not created yet."""
        request, external_id, method, key = call.request, call.external_id, call.method, call.key
        async with self._uow() as uow:
            version = request.notice_version
            # An existing subject is locked by the statement that reads the catalogue (one round trip);
            # a new one is created and locked once the choices are valid.
            found, listed, stated = await uow.consents.lock_with_catalogue(external_id, version, wait=wait)
            if found is None and not wait:
                raise _NotNow
            purposes = {p.key: p for p in listed}
            planned = validate_choices(request.choices, purposes, method, version, stated)
            subject_id = (
                found if found is not None else await uow.consents.lock_subject(external_id, self._clock())
            )
            if key is not None:
                previous = await uow.consents.events_for_key(subject_id, key)
                if _replays(previous, planned):
                    return await self._replay(uow, external_id, subject_id, previous, purposes)
            # The time is taken under the subject's lock, so a subject's events are in time order.
            events = call.events(planned, self._clock())
            return await self._record(uow, external_id, subject_id, events, purposes)

    async def withdraw(self, principal: Principal, request: WithdrawRequest) -> ConsentChange:
        """Withdraw (or object to) one topic/channel, a whole purpose, or every purpose."""
        external_id = validate_external_id(request.external_id, "subjectId")
        require_consent_write(principal, external_id)
        actor = actor_for(principal)
        method = method_for(principal, request.method)
        key = validate_idempotency_key(request.idempotency_key)
        if request.purpose is None and (request.topic != ANY or request.channel != ANY):
            raise ValidationFailed.single("purpose", "name the purpose the topic or channel belongs to")
        return await _retried(lambda: self._withdraw(request, external_id, actor, method, key))

    async def _withdraw(
        self, request: WithdrawRequest, external_id: str, actor: Actor, method: ConsentMethod, key: str | None
    ) -> ConsentChange:
        async with self._uow() as uow:
            found, listed, _ = await uow.consents.lock_with_catalogue(external_id, None)
            purposes = {p.key: p for p in listed}
            if request.purpose is not None:
                purpose = purposes.get(request.purpose)
                if purpose is None:
                    raise ValidationFailed.single("purpose", f"no purpose {request.purpose!r}")
                problems = scope_problems("", purpose, request.topic, request.channel)
                if problems:
                    raise ValidationFailed(problems)
            subject_id = (
                found if found is not None else await uow.consents.lock_subject(external_id, self._clock())
            )
            if key is not None:
                previous = await uow.consents.events_for_key(subject_id, key)
                if previous:
                    scopes, actions = {e.scope for e in previous}, [e.action for e in previous]
                    if not is_same_withdrawal(
                        scopes, actions, request.purpose, request.topic, request.channel
                    ):
                        raise ValidationFailed.single(
                            "idempotencyKey", "this key was used for a different call; use a new key"
                        )
                    return await self._replay(uow, external_id, subject_id, previous, purposes)
            current = (await uow.consents.states([subject_id]))[subject_id]
            targets = _withdrawal_scopes(request, purposes, current)
            if request.unless_refused:
                refused = {r.scope for r in current if r.status is not ConsentStatus.GRANTED}
                targets = [t for t in targets if t not in refused]
                if not targets:
                    return _change(external_id, [], False, purposes, current, self._clock())
            now = self._clock()
            events = [
                NewConsentEvent(
                    scope,
                    action_for(purposes[scope.purpose], False),
                    method,
                    None,
                    request.origin,
                    actor,
                    now,
                    now,
                    key,
                )
                for scope in targets
            ]
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
        saved = await uow.consents.append([(subject_id, e) for e in events])
        state = {r.scope: r for r in current}
        changed: dict[Scope, ConsentRecord] = {}
        for event in saved:
            after = apply(state.get(event.scope), event)
            state[event.scope] = changed[event.scope] = after
        await uow.consents.save_states([(subject_id, r) for r in changed.values()])
        # The receipt and the message follow from the ledger once this commits (consent_followups.py).
        await self._effects.after_change(uow, external_id, saved)
        await uow.commit()
        return _change(external_id, saved, False, purposes, state.values(), self._clock())

    async def _replay(
        self,
        uow: UnitOfWork,
        external_id: str,
        subject_id: int,
        previous: list[ConsentEvent],
        purposes: dict[str, Purpose],
    ) -> ConsentChange:
        current = (await uow.consents.states([subject_id]))[subject_id]
        return _change(external_id, previous, True, purposes, current, self._clock())

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


def _replays(previous: list[ConsentEvent], planned: list[tuple[Scope, ConsentAction]]) -> bool:
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


async def _retried(attempt: Callable[[], Awaitable[ConsentChange]]) -> ConsentChange:
    """Run a consent write again when the database gave it up for a concurrent one (a deadlock, a chain
    place taken in between: Conflict from the unit of work, nothing recorded), up to WRITE_ATTEMPTS times."""
    for _ in range(WRITE_ATTEMPTS - 1):
        try:
            return await attempt()
        except Conflict:
            continue
    return await attempt()


def _withdrawal_scopes(
    request: WithdrawRequest, purposes: dict[str, Purpose], current: list[ConsentRecord]
) -> list[Scope]:
    """The scopes to withdraw: the one named, and under a purpose-wide withdrawal every specific grant."""
    if request.purpose is not None and (request.topic != ANY or request.channel != ANY):
        return [Scope(request.purpose, request.topic, request.channel)]
    if request.purpose is not None:
        targets = [purposes[request.purpose]]
    else:
        recorded = {r.scope.purpose for r in current}
        targets = [
            p
            for p in purposes.values()
            if not needs_no_consent(p) and (p.key in recorded or p.mechanism is ConsentMechanism.OPT_OUT)
        ]
    scopes: list[Scope] = []
    for purpose in targets:
        scopes.append(Scope(purpose.key))
        scopes.extend(
            r.scope
            for r in current
            if r.scope.purpose == purpose.key
            and not r.scope.is_purpose_wide
            and r.status is ConsentStatus.GRANTED
        )
    return scopes
