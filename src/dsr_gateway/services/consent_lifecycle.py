"""Consent events the gateway records outside setConsents/withdrawConsent: a reconfirmation from a signed
link, a Global Privacy Control signal, an expiry found by the sweep; and unsubscribe-link withdrawals.

Each writes like the ledger's own use cases (subject row locked, events appended, projection saved) and
sets off the same effects in the same transaction (`consent.changed` webhook, "permission changed").

GPC (CCPA regulations § 7025(c)(3)): the signal is honoured as an opt-out of every purpose marked
`gpc_opt_out`, also where the subject had explicitly opted in; in that case the conflict is recorded
(`gpc_signal.conflict`) and shown to the subject (`Subject.gpcConflicts`), who may opt in again. A
signal is recorded once per subject and purpose: a later explicit opt-in is the subject's informed
choice after being told of the conflict, and a browser that keeps sending `Sec-GPC: 1` does not undo it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dsr_gateway.domain.consent import (
    ANY,
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    ConsentStatus,
    NewConsentEvent,
    Origin,
    Scope,
)
from dsr_gateway.domain.errors import Conflict, HeldTooLong, NotFound
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.domain.purposes import reconfirmation_cutoff
from dsr_gateway.services.comms.consent_effects import ConsentEffects
from dsr_gateway.services.comms.ports import GpcSignal
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_writes import WithdrawRequest, write_events
from dsr_gateway.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

logger = logging.getLogger("dsr_gateway.consent")
EXPIRY_ACTOR = Actor(ActorKind.SYSTEM, "expiry")
EXPIRY_BATCH = 500
# The longest a background write tried again later anyway (a GPC signal, one subject of the expiry sweep)
# waits for a subject another transaction holds: an import holds many, for its whole run, and each
# waiting write holds a pooled connection.
BACKGROUND_LOCK_WAIT = 0.1
_TICK = timedelta(microseconds=1)
RECONFIRMABLE = frozenset({ConsentStatus.GRANTED, ConsentStatus.EXPIRED})


@dataclass(frozen=True, slots=True)
class GpcConflict:
    purpose: str
    granted_at: datetime | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    subjects: int
    expired: int
    held: int = 0  # subjects another transaction (an import) held past BACKGROUND_LOCK_WAIT: next run


class ConsentLifecycleService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, consent: ConsentService, effects: ConsentEffects,
        expiry_grace: timedelta = timedelta(days=14), lock_timeout: float = 0.0,
    ) -> None:  # fmt: skip
        """`lock_timeout`: the longest a reconfirmation click waits for its subject while another
        transaction holds it (an import), in seconds (0: no limit); then HeldTooLong. A GPC recording and
        the expiry of one subject wait at most BACKGROUND_LOCK_WAIT (a later request records the signal;
        the sweep's next run expires the subject)."""
        self._uow = uow
        self._clock = clock
        self._consent = consent
        self._effects = effects
        self._grace = expiry_grace
        self._lock_timeout = lock_timeout
        self._background_wait = min(lock_timeout or BACKGROUND_LOCK_WAIT, BACKGROUND_LOCK_WAIT)

    # --- one-click links (the signed token is the authority; http/ verified it) --------------------

    async def unsubscribe(
        self, external_id: str, purpose: str, topic: str | None, channel: str | None, *, method: str
    ) -> None:
        """Withdraw what the link names; a second click records nothing (already withdrawn)."""
        # The signed link stands for the subject: the withdrawal is theirs (actor SUBJECT).
        principal = Principal(PrincipalKind.SUBJECT, id=external_id)
        views = (await self._consent.preferences_of([external_id]))[0]
        if not any(v.scope.purpose == purpose for v in views):
            raise NotFound("purpose", purpose)
        await self._consent.withdraw(
            principal,
            WithdrawRequest(
                external_id, purpose, topic or ANY, channel or ANY, method=ConsentMethod(method),
                origin=Origin(app_id="unsubscribe-link"), unless_refused=True,
            ),
        )  # fmt: skip

    async def reconfirm(self, external_id: str, purpose_key: str) -> int:
        """Record RECONFIRM for each granted (or expired) scope of the purpose, under the latest notice
        that states it; returns how many. Conflict when nothing is left to reconfirm."""
        async with self._uow() as uow:
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            if purpose_key not in purposes:
                raise NotFound("purpose", purpose_key)
            subject = await uow.subjects.get(external_id)
            if subject is None:
                raise Conflict("There is no permission to confirm: it was never given.")
            await uow.consents.limit_lock_wait(self._lock_timeout)  # a click: not for a whole import
            subject_id = await uow.consents.lock_subject(external_id, self._clock())
            current = (await uow.consents.states([subject_id]))[subject_id]
            scopes = [
                r.scope for r in current if r.scope.purpose == purpose_key and r.status in RECONFIRMABLE
            ]
            if not scopes:
                raise Conflict("There is nothing to confirm: this permission was withdrawn or never given.")
            version = await _latest_version_stating(uow, purpose_key)
            now = self._clock()
            actor = Actor(ActorKind.SUBJECT, external_id)
            events = [
                NewConsentEvent(scope, ConsentAction.RECONFIRM, ConsentMethod.BUTTON, version,
                                Origin(app_id="reconfirm-link"), actor, now, now)
                for scope in scopes
            ]  # fmt: skip
            await write_events(uow, self._effects, external_id, subject_id, events, current)
            await uow.commit()
        return len(events)

    # --- Global Privacy Control ------------------------------------------------------------------

    async def record_gpc(self, external_id: str) -> int:
        """Record a GPC opt-out of each `gpc_opt_out` purpose not yet signalled; returns how many."""
        async with self._uow() as uow:
            purposes = {p.key: p for p in await uow.purposes.list_all()}
            targets = [p for p in purposes.values() if p.gpc_opt_out and p.is_consentable]
            if not targets:
                return 0
            now = self._clock()
            # In the background of a request, holding a pooled connection: not for a whole import.
            await uow.consents.limit_lock_wait(self._background_wait)
            subject_id = await uow.consents.lock_subject(external_id, now)
            done = {s.purpose for s in (await uow.comms.gpc_signals([subject_id]))[subject_id]}
            targets = [p for p in targets if p.key not in done]
            if not targets:
                return 0
            current = (await uow.consents.states([subject_id]))[subject_id]
            actor = Actor(ActorKind.SUBJECT, external_id)
            events: list[NewConsentEvent] = []
            signals: list[tuple[str, bool, datetime | None]] = []
            for purpose in targets:
                mine = [r for r in current if r.scope.purpose == purpose.key]
                granted = [r for r in mine if r.status is ConsentStatus.GRANTED]
                scopes = [Scope(purpose.key)] + [r.scope for r in granted if not r.scope.is_purpose_wide]
                events.extend(
                    NewConsentEvent(s, ConsentAction.GPC_OPT_OUT, ConsentMethod.GPC, None,
                                    Origin(app_id="sec-gpc"), actor, now, now)
                    for s in scopes
                )  # fmt: skip
                given = max((r.given_at for r in granted if r.given_at), default=None)
                signals.append((purpose.key, bool(granted), given))
            saved, _ = await write_events(uow, self._effects, external_id, subject_id, events, current)
            first_event = {e.scope.purpose: e.id for e in reversed(saved)}
            await uow.comms.add_gpc_signals(
                subject_id,
                [
                    GpcSignal(key, first_event.get(key), conflict, given, now)
                    for key, conflict, given in signals
                ],
            )
            await uow.commit()
        if any(conflict for _, conflict, _ in signals):
            logger.info("GPC signal conflicts with an explicit opt-in; honoured as an opt-out and recorded")
        return len(signals)

    async def gpc_conflicts(self, external_ids: Sequence[str]) -> list[list[GpcConflict]]:
        """Per subject, the conflicts still in effect (the GPC opt-out is the current purpose-wide state):
        a DataLoader batch, three statements for any number of subjects."""
        async with self._uow() as uow:
            subjects = await uow.subjects.many(external_ids)
            ids = [s.id for s in subjects.values()]
            signals = await uow.comms.gpc_signals(ids)
            states = await uow.consents.states(ids)
        result: list[list[GpcConflict]] = []
        for external_id in external_ids:
            subject = subjects.get(external_id)
            if subject is None:
                result.append([])
                continue
            current = {r.scope: r for r in states.get(subject.id, [])}
            result.append(
                [
                    GpcConflict(s.purpose, s.granted_at, s.recorded_at)
                    for s in signals.get(subject.id, [])
                    if s.conflict
                    and (r := current.get(Scope(s.purpose))) is not None
                    and r.status is ConsentStatus.GPC_OPT_OUT
                ]
            )
        return result

    # --- the expiry sweep --------------------------------------------------------------------------

    async def expire_due(self, limit: int = EXPIRY_BATCH) -> ExpiryRun:
        """EXPIRE every grant past its purpose's reconfirmation period plus the grace, up to `limit`
        subjects per run (the worker runs it again); one short transaction per subject."""
        now = self._clock()
        async with self._uow() as uow:
            # Per purpose with a period: a grant given at or before its cutoff has expired.
            cutoffs: dict[str, datetime] = {}
            for purpose in await uow.purposes.list_all():
                if (cutoff := reconfirmation_cutoff(purpose, now, self._grace)) is not None:
                    cutoffs[purpose.key] = cutoff
            due: dict[tuple[int, str], str] = {}
            for key, cutoff in cutoffs.items():
                # granted_given_before compares strictly: ask for one microsecond past the cutoff.
                for subject_id, external_id, *_ in await uow.comms.granted_given_before(
                    key, cutoff + _TICK, None, limit
                ):
                    due.setdefault((subject_id, external_id), key)
        subjects = list(dict.fromkeys(key for key in due))[:limit]
        expired = held = 0
        for _subject_id, external_id in subjects:
            try:
                expired += await self._expire_subject(external_id, cutoffs, now)
            except HeldTooLong:
                held += 1  # an import holds it: its grants expire on the next run, the others now
        if expired:
            logger.info("expiry sweep: %d consents of %d subjects expired", expired, len(subjects) - held)
        if held:
            logger.warning(
                "expiry sweep: %d subjects held by another writer (an import); the next run expires them",
                held,
            )
        return ExpiryRun(len(subjects) - held, expired, held)

    async def _expire_subject(self, external_id: str, cutoffs: dict[str, datetime], now: datetime) -> int:
        async with self._uow() as uow:
            await uow.consents.limit_lock_wait(self._background_wait)
            subject_id = await uow.consents.lock_subject(external_id, now)
            current = (await uow.consents.states([subject_id]))[subject_id]
            events = []
            for record in current:
                cutoff = cutoffs.get(record.scope.purpose)
                if cutoff is None or record.status is not ConsentStatus.GRANTED or record.given_at is None:
                    continue
                if record.given_at <= cutoff:
                    events.append(
                        NewConsentEvent(record.scope, ConsentAction.EXPIRE, ConsentMethod.SYSTEM, None,
                                        Origin(app_id="expiry-sweep"), EXPIRY_ACTOR, now, now)
                    )  # fmt: skip
            if events:
                await write_events(uow, self._effects, external_id, subject_id, events, current)
                await uow.commit()
        return len(events)


async def _latest_version_stating(uow: UnitOfWork, purpose: str) -> int | None:
    latest = await uow.notices.get(None)
    if latest is not None and latest.purpose(purpose) is not None:
        return latest.version
    return None
