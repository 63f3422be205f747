"""The request workflow: THE ONE transition table, and who may take each step.

Every status change in the code base goes through `apply`; nothing else assigns a status. A row of
`TRANSITIONS` says, for a (status, action) pair, the status that follows and the roles allowed to act.
A pair that is not in the table is an illegal move. The services add what the table cannot know:
that a SUBJECT acts on their own request, the version guard, and the SLA rules for EXTEND.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from dsr_gateway.domain.errors import IllegalTransition, PermissionDenied, ValidationFailed
from dsr_gateway.domain.requests import RejectionReason
from dsr_gateway.domain.requests import RequestStatus as S


class Action(StrEnum):
    VERIFY = "VERIFY"
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    REQUEST_INFORMATION = "REQUEST_INFORMATION"
    PROVIDE_INFORMATION = "PROVIDE_INFORMATION"
    START = "START"  # in no row of TRANSITIONS (legal nowhere); kept as a value of the public enum
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"
    EXTEND = "EXTEND"
    ASSIGN = "ASSIGN"


class ActorRole(StrEnum):
    """Who acts. SUBJECT means the data subject acting on their OWN request (the service checks ownership)."""

    SUBJECT = "SUBJECT"
    AGENT = "AGENT"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


A = Action
SUBJECT, AGENT, ADMIN, SYSTEM = ActorRole.SUBJECT, ActorRole.AGENT, ActorRole.ADMIN, ActorRole.SYSTEM
STAFF = frozenset({AGENT, ADMIN})
ANYONE_BUT_SYSTEM = STAFF | {SUBJECT}


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: where the action leads and who may take it."""

    to_status: S
    roles: frozenset[ActorRole]


def _keep(status: S) -> Rule:
    """ASSIGN and EXTEND change the assignee or the deadline, never the status; staff only."""
    return Rule(status, STAFF)


# THE transition table. Design choices, so nobody has to rediscover them:
# - VERIFY leads to SUBMITTED, not PENDING_REVIEW: once identity is proven, an anonymous request is in
#   exactly the state of one from a signed-in subject or an agent's intake, so triage, the queue filter
#   for new work and the acknowledgement logic see one state. PENDING_REVIEW then means one thing only:
#   the subject answered our question and the request needs a second look.
# - APPROVE leads straight to IN_PROGRESS: approval IS the decision to fulfil, and the public status enum
#   has no "approved but idle" state. No action records that a fulfilment run began: START is a value
#   of the public enum but has no row (the worker never applied it).
# - Only staff approve, reject, ask for information, assign and extend. The subject may cancel while
#   nothing is running and answer our questions. Once fulfilment runs (IN_PROGRESS, FAILED) only staff may
#   cancel: half an erasure needs a person to decide what to do with it.
# - FAIL is the worker's (SYSTEM). COMPLETE is the worker's when every system has answered, and staff's
#   too: until a fulfilment worker exists (and for requests fulfilled by hand) an agent or admin closes
#   an IN_PROGRESS request. A person fixes a FAILED request by RETRY, CANCEL or REJECT.
# - AWAITING_VERIFICATION allows no ASSIGN/EXTEND: nothing about an unverified request is shown to staff
#   work queues and no deadline is owed yet. SYSTEM may cancel (code expired) or reject
#   (IDENTITY_NOT_VERIFIED after too many attempts) there.
# - FAILED is open (the deadline still runs), so ASSIGN and EXTEND are allowed there too.
TRANSITIONS: Mapping[tuple[S, Action], Rule] = MappingProxyType(
    {
        (S.AWAITING_VERIFICATION, A.VERIFY): Rule(S.SUBMITTED, frozenset({SUBJECT})),
        (S.AWAITING_VERIFICATION, A.REJECT): Rule(S.REJECTED, STAFF | {SYSTEM}),
        (S.AWAITING_VERIFICATION, A.CANCEL): Rule(S.CANCELLED, frozenset(ActorRole)),
        (S.SUBMITTED, A.APPROVE): Rule(S.IN_PROGRESS, STAFF),
        (S.SUBMITTED, A.REJECT): Rule(S.REJECTED, STAFF),
        (S.SUBMITTED, A.REQUEST_INFORMATION): Rule(S.AWAITING_SUBJECT, STAFF),
        (S.SUBMITTED, A.CANCEL): Rule(S.CANCELLED, ANYONE_BUT_SYSTEM),
        (S.SUBMITTED, A.ASSIGN): _keep(S.SUBMITTED),
        (S.SUBMITTED, A.EXTEND): _keep(S.SUBMITTED),
        (S.PENDING_REVIEW, A.APPROVE): Rule(S.IN_PROGRESS, STAFF),
        (S.PENDING_REVIEW, A.REJECT): Rule(S.REJECTED, STAFF),
        (S.PENDING_REVIEW, A.REQUEST_INFORMATION): Rule(S.AWAITING_SUBJECT, STAFF),
        (S.PENDING_REVIEW, A.CANCEL): Rule(S.CANCELLED, ANYONE_BUT_SYSTEM),
        (S.PENDING_REVIEW, A.ASSIGN): _keep(S.PENDING_REVIEW),
        (S.PENDING_REVIEW, A.EXTEND): _keep(S.PENDING_REVIEW),
        (S.AWAITING_SUBJECT, A.PROVIDE_INFORMATION): Rule(S.PENDING_REVIEW, ANYONE_BUT_SYSTEM),
        (S.AWAITING_SUBJECT, A.REJECT): Rule(S.REJECTED, STAFF),
        (S.AWAITING_SUBJECT, A.CANCEL): Rule(S.CANCELLED, ANYONE_BUT_SYSTEM),
        (S.AWAITING_SUBJECT, A.ASSIGN): _keep(S.AWAITING_SUBJECT),
        (S.AWAITING_SUBJECT, A.EXTEND): _keep(S.AWAITING_SUBJECT),
        (S.IN_PROGRESS, A.COMPLETE): Rule(S.COMPLETED, STAFF | {SYSTEM}),
        (S.IN_PROGRESS, A.FAIL): Rule(S.FAILED, frozenset({SYSTEM})),
        (S.IN_PROGRESS, A.CANCEL): Rule(S.CANCELLED, STAFF),
        (S.IN_PROGRESS, A.ASSIGN): _keep(S.IN_PROGRESS),
        (S.IN_PROGRESS, A.EXTEND): _keep(S.IN_PROGRESS),
        (S.FAILED, A.RETRY): Rule(S.IN_PROGRESS, STAFF),
        (S.FAILED, A.REJECT): Rule(S.REJECTED, STAFF),
        (S.FAILED, A.CANCEL): Rule(S.CANCELLED, STAFF),
        (S.FAILED, A.ASSIGN): _keep(S.FAILED),
        (S.FAILED, A.EXTEND): _keep(S.FAILED),
        # COMPLETED, REJECTED and CANCELLED are terminal: no rows.
    }
)


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of a legal move; from == to for ASSIGN and EXTEND."""

    from_status: S
    to_status: S
    action: Action

    @property
    def changes_status(self) -> bool:
        return self.from_status is not self.to_status


def allowed_actions(status: S, actor_role: ActorRole) -> tuple[Action, ...]:
    """What this role may do now, in the enum's order (stable for UIs and error messages)."""
    return tuple(
        action
        for action in Action
        if (rule := TRANSITIONS.get((status, action))) is not None and actor_role in rule.roles
    )


def apply(status: S, action: Action, actor_role: ActorRole) -> Transition:
    """Decide a move. The status is checked before the role: a move that is impossible for everyone is an
    IllegalTransition (listing what this role may do instead), one that only others may take is a denial."""
    status, action, actor_role = S(status), Action(action), ActorRole(actor_role)
    rule = TRANSITIONS.get((status, action))
    if rule is None:
        raise IllegalTransition(action, status, allowed_actions(status, actor_role))
    if actor_role not in rule.roles:
        raise PermissionDenied(f"A {actor_role.lower()} may not {_verb(action)} a request that is {status}.")
    return Transition(from_status=status, to_status=rule.to_status, action=action)


def _verb(action: Action) -> str:
    return action.lower().replace("_", " ")


# --- the history --------------------------------------------------------------------------------------

# Actions whose event must say why: the subject is told the reason (rejection, extension) or staff need
# it to act (failure).
REASON_REQUIRED = frozenset({A.REJECT, A.EXTEND, A.FAIL})
REASON_MAX_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One line of a request's history, appended for every applied Transition and never changed.

    For REJECT, `reason` is a RejectionReason code (the free-text message goes in `data`). `data` holds
    JSON-serialisable extras (assignee, new due date, the question asked) and is read-only.
    """

    request_id: str
    action: Action
    from_status: S
    to_status: S
    actor_kind: ActorRole
    actor_id: str | None
    occurred_at: datetime
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))
        if self.action in REASON_REQUIRED and not (self.reason and self.reason.strip()):
            raise ValidationFailed.single("reason", f"Say why you {_verb(self.action)} this request.")
        if self.reason is not None and len(self.reason) > REASON_MAX_LENGTH:
            raise ValidationFailed.single("reason", f"Must be at most {REASON_MAX_LENGTH} characters.")
        if self.action is A.REJECT and self.reason not in RejectionReason.__members__:
            codes = ", ".join(RejectionReason)
            raise ValidationFailed.single("reason", f"Must be one of the rejection reasons: {codes}.")

    @classmethod
    def record(
        cls,
        request_id: str,
        transition: Transition,
        *,
        actor_kind: ActorRole,
        actor_id: str | None,
        occurred_at: datetime,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> RequestEvent:
        """The event for a transition that `apply` returned: the statuses cannot disagree with the table."""
        return cls(
            request_id=request_id,
            action=transition.action,
            from_status=transition.from_status,
            to_status=transition.to_status,
            actor_kind=actor_kind,
            actor_id=actor_id,
            occurred_at=occurred_at,
            reason=reason,
            data=data or {},
        )
