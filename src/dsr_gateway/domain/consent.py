"""Consent events, the state they fold into, and the decision "may we process for this purpose?".

The ledger is a list of `ConsentEvent`s, never changed in place. `apply` folds one event into the
current `ConsentRecord` of its scope (subject x purpose x topic x channel); `decide` turns the records
that cover a question into an answer with a `ConsentReason`. Both are pure, so the projection written
beside each event and a fold of the whole history must agree (a test checks it under concurrency).

Scopes: `topic` and `channel` are `ANY` ("") when a choice covers the whole purpose or every channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from dsr_gateway.domain.purposes import ConsentMechanism, LegalBasis, Purpose, reconfirmation_cutoff

ANY = ""


class ConsentAction(StrEnum):
    GRANT = "GRANT"
    WITHDRAW = "WITHDRAW"
    RECONFIRM = "RECONFIRM"
    EXPIRE = "EXPIRE"
    OBJECT = "OBJECT"
    GPC_OPT_OUT = "GPC_OPT_OUT"


class ConsentMethod(StrEnum):
    CHECKBOX = "CHECKBOX"
    BUTTON = "BUTTON"
    API = "API"
    UNSUBSCRIBE_LINK = "UNSUBSCRIBE_LINK"
    GPC = "GPC"
    AGENT = "AGENT"
    IMPORT = "IMPORT"
    # Recorded by the gateway itself (the expiry sweep); never accepted from a caller.
    SYSTEM = "SYSTEM"


# The methods that can carry consent (GDPR Art. 4(11), recital 32: "a clear affirmative act"), and why.
AFFIRMATIVE_METHODS: Mapping[ConsentMethod, str] = {
    ConsentMethod.CHECKBOX: "the subject ticked a box that was not ticked in advance",
    ConsentMethod.BUTTON: "the subject pressed a button whose label states the choice",
    ConsentMethod.API: "the business's app relays a choice the subject made in its own interface",
    ConsentMethod.AGENT: "an agent records what the subject said, on the phone or in writing",
    ConsentMethod.IMPORT: "a choice made in an earlier system, carried over with its date",
}
# An unsubscribe link or a GPC signal can only say "no"; silence or a pre-ticked box never says "yes".
NON_AFFIRMATIVE_REASON = {
    ConsentMethod.UNSUBSCRIBE_LINK: "an unsubscribe link can only withdraw",
    ConsentMethod.GPC: "a Global Privacy Control signal can only opt out",
    ConsentMethod.SYSTEM: "the gateway only records expiries",
}


class ConsentStatus(StrEnum):
    """What the last effective event of a scope said."""

    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"
    OBJECTED = "OBJECTED"
    EXPIRED = "EXPIRED"
    GPC_OPT_OUT = "GPC_OPT_OUT"


STATUS_AFTER: Mapping[ConsentAction, ConsentStatus] = {
    ConsentAction.GRANT: ConsentStatus.GRANTED,
    ConsentAction.RECONFIRM: ConsentStatus.GRANTED,
    ConsentAction.WITHDRAW: ConsentStatus.WITHDRAWN,
    ConsentAction.OBJECT: ConsentStatus.OBJECTED,
    ConsentAction.EXPIRE: ConsentStatus.EXPIRED,
    ConsentAction.GPC_OPT_OUT: ConsentStatus.GPC_OPT_OUT,
}
# The actions after which the scope is granted (a receipt says GRANTED, a message says "granted").
GRANTING_ACTIONS = frozenset(a for a, s in STATUS_AFTER.items() if s is ConsentStatus.GRANTED)


class ConsentReason(StrEnum):
    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"
    NOT_GIVEN = "NOT_GIVEN"
    EXPIRED = "EXPIRED"
    NEEDS_RECONSENT = "NEEDS_RECONSENT"
    GPC_OPT_OUT = "GPC_OPT_OUT"
    NOT_REQUIRED = "NOT_REQUIRED"


class ActorKind(StrEnum):
    SUBJECT = "SUBJECT"
    AGENT = "AGENT"
    API_CLIENT = "API_CLIENT"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a choice came from; `ip` is already truncated (see `consent_origin.truncate_ip`)."""

    app_id: str | None = None
    url: str | None = None
    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    purpose: str
    topic: str = ANY
    channel: str = ANY

    @property
    def is_purpose_wide(self) -> bool:
        return self.topic == ANY and self.channel == ANY


@dataclass(frozen=True, slots=True)
class NewConsentEvent:
    """An event about to be recorded; the ledger gives it an id."""

    scope: Scope
    action: ConsentAction
    method: ConsentMethod
    notice_version: int | None
    origin: Origin
    actor: Actor
    occurred_at: datetime
    recorded_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    id: int
    subject_id: int
    scope: Scope
    action: ConsentAction
    method: ConsentMethod
    notice_version: int | None
    origin: Origin
    actor: Actor
    occurred_at: datetime
    recorded_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """The projection: the state of one scope after its last effective event."""

    scope: Scope
    status: ConsentStatus
    method: ConsentMethod
    # The notice version shown when consent was last granted (the version agreed to).
    notice_version: int | None
    # When consent was last granted or reconfirmed; the reconfirmation period runs from here.
    given_at: datetime | None
    # When the last effective event occurred, and which event that was.
    updated_at: datetime
    last_event_id: int


def apply(record: ConsentRecord | None, event: ConsentEvent) -> ConsentRecord:
    """Fold one event into its scope's record.

    Ledger order decides, except that an event which occurred before the record's last change (an
    import of an older system's history) is kept as evidence but does not override a newer choice.
    Live writes take their time under the subject's lock, so for them "last recorded wins".
    """
    return applied(record, event, event.id)


def applied(
    record: ConsentRecord | None, event: ConsentEvent | NewConsentEvent, event_id: int
) -> ConsentRecord:
    """`apply` of an event known by its id (an import folds its new events without making each a
    ConsentEvent first: a few microseconds a row)."""
    if record is not None and event.occurred_at < record.updated_at:
        return record
    status = STATUS_AFTER[event.action]
    granting = status is ConsentStatus.GRANTED
    if event.action is ConsentAction.RECONFIRM and record is not None:
        notice_version = event.notice_version or record.notice_version
    elif granting:
        notice_version = event.notice_version
    else:
        notice_version = record.notice_version if record else None
    return ConsentRecord(
        scope=event.scope,
        status=status,
        method=event.method,
        notice_version=notice_version,
        given_at=event.occurred_at if granting else (record.given_at if record else None),
        updated_at=event.occurred_at,
        last_event_id=event_id,
    )


def fold(events: Iterable[ConsentEvent]) -> dict[tuple[int, Scope], ConsentRecord]:
    """The state of every (subject, scope) after the events, in ledger (id) order."""
    state: dict[tuple[int, Scope], ConsentRecord] = {}
    for event in sorted(events, key=lambda e: e.id):
        key = (event.subject_id, event.scope)
        state[key] = apply(state.get(key), event)
    return state


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: ConsentReason


# Decisions are immutable values with few possible outcomes: one instance each (a batch check decides
# for 10,000 subjects at a time).
ALLOWED_NOT_REQUIRED = Decision(True, ConsentReason.NOT_REQUIRED)
ALLOWED_GRANTED = Decision(True, ConsentReason.GRANTED)
REFUSED_NOT_GIVEN = Decision(False, ConsentReason.NOT_GIVEN)
REFUSED_NEEDS_RECONSENT = Decision(False, ConsentReason.NEEDS_RECONSENT)
REFUSED_EXPIRED = Decision(False, ConsentReason.EXPIRED)

NOT_REQUIRED_BASES = frozenset({LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION})


def needs_no_consent(purpose: Purpose) -> bool:
    """Disclosed only, or necessary for a contract or a legal obligation: no choice to respect."""
    return purpose.mechanism is ConsentMechanism.NOTICE_ONLY or purpose.legal_basis in NOT_REQUIRED_BASES


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """What a decision reads of a record: a consent check reads no more than this from the database."""

    scope: Scope
    status: ConsentStatus
    notice_version: int | None
    given_at: datetime | None


class Decidable(Protocol):
    """A ConsentRecord, or a check's CheckedRecord."""

    @property
    def scope(self) -> Scope: ...
    @property
    def status(self) -> ConsentStatus: ...
    @property
    def notice_version(self) -> int | None: ...
    @property
    def given_at(self) -> datetime | None: ...


R = TypeVar("R", bound=Decidable)


def covering_record(records: Iterable[R], topic: str = ANY, channel: str = ANY) -> R | None:
    """The record that governs a question about (topic, channel), by this precedence:

    1. the exact scope (topic and channel);
    2. the topic on any channel, and the channel for any topic: the more specific choice beats the
       purpose-wide one; when both exist and disagree, the one that does not permit processing wins
       (a "no" to SMS is not overridden by a "yes" to a topic, nor the other way round);
    3. the purpose-wide record.
    A purpose-wide withdrawal also withdraws every more specific grant (the service records those
    events), so "withdraw everything" is never undone by an older specific "yes".
    """
    if topic == ANY and channel == ANY:
        # The purpose-wide question (the batch check's usual one): only the purpose-wide record counts.
        found = None
        for r in records:
            if r.scope.topic == ANY and r.scope.channel == ANY:
                found = r
        return found
    by_scope = {(r.scope.topic, r.scope.channel): r for r in records}
    exact = by_scope.get((topic, channel))
    if exact is not None:
        return exact
    partial = [
        r
        for r in (
            by_scope.get((topic, ANY)) if topic != ANY else None,
            by_scope.get((ANY, channel)) if channel != ANY else None,
        )
        if r is not None
    ]
    if partial:
        refusing = [r for r in partial if r.status is not ConsentStatus.GRANTED]
        return refusing[0] if refusing else partial[0]
    return by_scope.get((ANY, ANY))


def decide(
    purpose: Purpose,
    records: Iterable[Decidable],
    now: datetime,
    topic: str = ANY,
    channel: str = ANY,
) -> Decision:
    """May the business process the subject's data for this purpose (topic, channel) now, and why."""
    return decider(purpose, now, topic, channel)(records)


def decider(
    purpose: Purpose, now: datetime, topic: str = ANY, channel: str = ANY
) -> Callable[[Iterable[Decidable]], Decision]:
    """`decide` for many subjects: what depends only on the purpose and the time is worked out once."""
    if needs_no_consent(purpose):
        return lambda _records: ALLOWED_NOT_REQUIRED
    opt_out = purpose.mechanism is ConsentMechanism.OPT_OUT
    unrecorded = ALLOWED_NOT_REQUIRED if opt_out else REFUSED_NOT_GIVEN
    material = purpose.last_material_version
    # Given at or before this moment: past the reconfirmation period (given_at + period <= now).
    lapsed_by = reconfirmation_cutoff(purpose, now)

    def decision(records: Iterable[Decidable]) -> Decision:
        record = covering_record(records, topic, channel)
        if record is None:
            # Opt-out purposes are in effect until an objection; opt-in ones need an explicit grant.
            return unrecorded
        if record.status is not ConsentStatus.GRANTED:
            return _REFUSAL[record.status]
        if opt_out:
            return ALLOWED_GRANTED
        # A material change of the purpose after the version agreed to: the consent no longer counts.
        if material is not None and (record.notice_version is None or record.notice_version < material):
            return REFUSED_NEEDS_RECONSENT
        if lapsed_by is not None and record.given_at is not None and record.given_at <= lapsed_by:
            return REFUSED_EXPIRED
        return ALLOWED_GRANTED

    return decision


_REFUSAL: Mapping[ConsentStatus, Decision] = {
    ConsentStatus.WITHDRAWN: Decision(False, ConsentReason.WITHDRAWN),
    ConsentStatus.OBJECTED: Decision(False, ConsentReason.WITHDRAWN),
    ConsentStatus.EXPIRED: REFUSED_EXPIRED,
    ConsentStatus.GPC_OPT_OUT: Decision(False, ConsentReason.GPC_OPT_OUT),
}


@dataclass(frozen=True, slots=True)
class ConsentView:
    """One line of a subject's preferences: the scope, what was recorded (if anything), the decision."""

    scope: Scope
    record: ConsentRecord | None
    decision: Decision


def preferences(
    purposes: Iterable[Purpose], records: Iterable[ConsentRecord], now: datetime
) -> list[ConsentView]:
    """Every purpose (its purpose-wide line, recorded or not), then each more specific recorded scope."""
    by_purpose: dict[str, list[ConsentRecord]] = {}
    for record in records:
        by_purpose.setdefault(record.scope.purpose, []).append(record)
    views: list[ConsentView] = []
    for purpose in purposes:
        mine = by_purpose.get(purpose.key, [])
        wide = next((r for r in mine if r.scope.is_purpose_wide), None)
        views.append(ConsentView(Scope(purpose.key), wide, decide(purpose, mine, now)))
        for record in sorted(mine, key=lambda r: (r.scope.topic, r.scope.channel)):
            if not record.scope.is_purpose_wide:
                scope = record.scope
                views.append(
                    ConsentView(scope, record, decide(purpose, mine, now, scope.topic, scope.channel))
                )
    return views
