"""The transition table, checked against an independent copy written out by hand.

EXPECTED is deliberately not derived from TRANSITIONS: a change to the workflow must be made twice, once
here, so that nobody widens what a role may do by accident.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dsr_gateway.domain.errors import IllegalTransition, PermissionDenied, ValidationFailed
from dsr_gateway.domain.requests import RequestStatus as S
from dsr_gateway.domain.workflow import (
    TRANSITIONS,
    Action,
    ActorRole,
    RequestEvent,
    Transition,
    allowed_actions,
    apply,
)

A = Action
SUB, AGT, ADM, SYS = ActorRole.SUBJECT, ActorRole.AGENT, ActorRole.ADMIN, ActorRole.SYSTEM
STAFF = {AGT, ADM}

# (status, action): (target, roles that may take it)
EXPECTED: dict[tuple[S, Action], tuple[S, set[ActorRole]]] = {
    (S.AWAITING_VERIFICATION, A.VERIFY): (S.SUBMITTED, {SUB}),
    (S.AWAITING_VERIFICATION, A.REJECT): (S.REJECTED, {AGT, ADM, SYS}),
    (S.AWAITING_VERIFICATION, A.CANCEL): (S.CANCELLED, {SUB, AGT, ADM, SYS}),
    (S.SUBMITTED, A.APPROVE): (S.IN_PROGRESS, STAFF),
    (S.SUBMITTED, A.REJECT): (S.REJECTED, STAFF),
    (S.SUBMITTED, A.REQUEST_INFORMATION): (S.AWAITING_SUBJECT, STAFF),
    (S.SUBMITTED, A.CANCEL): (S.CANCELLED, {SUB, AGT, ADM}),
    (S.SUBMITTED, A.ASSIGN): (S.SUBMITTED, STAFF),
    (S.SUBMITTED, A.EXTEND): (S.SUBMITTED, STAFF),
    (S.PENDING_REVIEW, A.APPROVE): (S.IN_PROGRESS, STAFF),
    (S.PENDING_REVIEW, A.REJECT): (S.REJECTED, STAFF),
    (S.PENDING_REVIEW, A.REQUEST_INFORMATION): (S.AWAITING_SUBJECT, STAFF),
    (S.PENDING_REVIEW, A.CANCEL): (S.CANCELLED, {SUB, AGT, ADM}),
    (S.PENDING_REVIEW, A.ASSIGN): (S.PENDING_REVIEW, STAFF),
    (S.PENDING_REVIEW, A.EXTEND): (S.PENDING_REVIEW, STAFF),
    (S.AWAITING_SUBJECT, A.PROVIDE_INFORMATION): (S.PENDING_REVIEW, {SUB, AGT, ADM}),
    (S.AWAITING_SUBJECT, A.REJECT): (S.REJECTED, STAFF),
    (S.AWAITING_SUBJECT, A.CANCEL): (S.CANCELLED, {SUB, AGT, ADM}),
    (S.AWAITING_SUBJECT, A.ASSIGN): (S.AWAITING_SUBJECT, STAFF),
    (S.AWAITING_SUBJECT, A.EXTEND): (S.AWAITING_SUBJECT, STAFF),
    (S.IN_PROGRESS, A.COMPLETE): (S.COMPLETED, {AGT, ADM, SYS}),
    (S.IN_PROGRESS, A.FAIL): (S.FAILED, {SYS}),
    (S.IN_PROGRESS, A.CANCEL): (S.CANCELLED, STAFF),
    (S.IN_PROGRESS, A.ASSIGN): (S.IN_PROGRESS, STAFF),
    (S.IN_PROGRESS, A.EXTEND): (S.IN_PROGRESS, STAFF),
    (S.FAILED, A.RETRY): (S.IN_PROGRESS, STAFF),
    (S.FAILED, A.REJECT): (S.REJECTED, STAFF),
    (S.FAILED, A.CANCEL): (S.CANCELLED, STAFF),
    (S.FAILED, A.ASSIGN): (S.FAILED, STAFF),
    (S.FAILED, A.EXTEND): (S.FAILED, STAFF),
}

ALL_PAIRS = list(itertools.product(S, Action))
ALL_TRIPLES = list(itertools.product(S, Action, ActorRole))
TERMINAL = [S.COMPLETED, S.REJECTED, S.CANCELLED]


def _expected_allowed(status: S, role: ActorRole) -> tuple[Action, ...]:
    return tuple(a for a in Action if (status, a) in EXPECTED and role in EXPECTED[status, a][1])


def test_table_matches_the_hand_written_copy() -> None:
    actual = {key: (rule.to_status, set(rule.roles)) for key, rule in TRANSITIONS.items()}
    assert actual == EXPECTED


@pytest.mark.parametrize(("status", "action", "role"), ALL_TRIPLES, ids=lambda v: str(v))
def test_every_status_action_role(status: S, action: Action, role: ActorRole) -> None:
    """The complete cross product: legal + permitted succeeds, legal + not permitted is denied,
    everything else is an IllegalTransition that carries the status and what this role may do."""
    if (status, action) in EXPECTED:
        target, roles = EXPECTED[status, action]
        if role in roles:
            assert apply(status, action, role) == Transition(status, target, action)
        else:
            with pytest.raises(PermissionDenied):
                apply(status, action, role)
    else:
        with pytest.raises(IllegalTransition) as caught:
            apply(status, action, role)
        assert caught.value.action == action
        assert caught.value.current_status == status
        assert caught.value.allowed_actions == _expected_allowed(status, role)
        assert str(status) in caught.value.message


@pytest.mark.parametrize(("status", "action"), ALL_PAIRS, ids=lambda v: str(v))
def test_every_pair_is_legal_for_someone_or_for_nobody(status: S, action: Action) -> None:
    outcomes = []
    for role in ActorRole:
        try:
            apply(status, action, role)
            outcomes.append("ok")
        except PermissionDenied:
            outcomes.append("denied")
        except IllegalTransition:
            outcomes.append("illegal")
    if (status, action) in EXPECTED:
        assert "ok" in outcomes
        assert "illegal" not in outcomes
    else:
        assert set(outcomes) == {"illegal"}


@pytest.mark.parametrize(("status", "role"), list(itertools.product(S, ActorRole)), ids=lambda v: str(v))
def test_allowed_actions_per_role(status: S, role: ActorRole) -> None:
    assert allowed_actions(status, role) == _expected_allowed(status, role)


@pytest.mark.parametrize("status", TERMINAL)
@pytest.mark.parametrize("role", list(ActorRole))
def test_terminal_states_allow_nothing(status: S, role: ActorRole) -> None:
    assert status.is_terminal
    assert not status.is_open
    assert allowed_actions(status, role) == ()
    for action in Action:
        with pytest.raises(IllegalTransition) as caught:
            apply(status, action, role)
        assert caught.value.allowed_actions == ()


@pytest.mark.parametrize("status", [s for s in S if s not in TERMINAL])
def test_every_open_status_has_a_way_out(status: S) -> None:
    assert status.is_open
    leaving = [key for key, rule in TRANSITIONS.items() if key[0] is status and rule.to_status is not status]
    assert leaving


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        # Who may do what anywhere in the workflow: a summary a privacy officer can read.
        (SUB, {A.VERIFY, A.CANCEL, A.PROVIDE_INFORMATION}),
        (SYS, {A.REJECT, A.CANCEL, A.COMPLETE, A.FAIL}),
        (AGT, set(Action) - {A.VERIFY, A.START, A.FAIL}),
        (ADM, set(Action) - {A.VERIFY, A.START, A.FAIL}),
    ],
)
def test_role_summary(role: ActorRole, actions: set[Action]) -> None:
    assert {action for (_, action), rule in TRANSITIONS.items() if role in rule.roles} == actions


@pytest.mark.parametrize("action", [A.ASSIGN, A.EXTEND])
def test_bookkeeping_actions_keep_the_status_and_only_in_open_statuses(action: Action) -> None:
    for (status, a), rule in TRANSITIONS.items():
        if a is action:
            assert status.is_open
            assert rule.to_status is status


@pytest.mark.parametrize(
    ("status", "action"),
    [(S.SUBMITTED, A.APPROVE), (S.PENDING_REVIEW, A.REJECT), (S.SUBMITTED, A.ASSIGN), (S.FAILED, A.RETRY)],
)
def test_subject_and_system_cannot_take_staff_decisions(status: S, action: Action) -> None:
    for role in (SUB, SYS):
        with pytest.raises(PermissionDenied):
            apply(status, action, role)


def test_subject_may_not_cancel_once_fulfilment_runs() -> None:
    with pytest.raises(PermissionDenied):
        apply(S.IN_PROGRESS, A.CANCEL, SUB)
    assert apply(S.IN_PROGRESS, A.CANCEL, AGT).to_status is S.CANCELLED


def test_transition_reports_whether_status_changed() -> None:
    assert apply(S.SUBMITTED, A.APPROVE, AGT).changes_status
    assert not apply(S.SUBMITTED, A.ASSIGN, AGT).changes_status


def test_apply_accepts_plain_strings_from_the_edge() -> None:
    assert apply("SUBMITTED", "APPROVE", "ADMIN") == Transition(S.SUBMITTED, S.IN_PROGRESS, A.APPROVE)  # type: ignore[arg-type]


# --- history events --------------------------------------------------------------------------------

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def _event(action: Action = A.APPROVE, reason: str | None = None, **overrides: object) -> RequestEvent:
    status = next(s for (s, a) in EXPECTED if a is action)
    role = sorted(EXPECTED[status, action][1])[0]
    values: dict[str, object] = {
        "actor_kind": role,
        "actor_id": "agent-7",
        "occurred_at": NOW,
        "reason": reason,
        "data": {},
    }
    values.update(overrides)
    return RequestEvent.record("req-1", apply(status, action, role), **values)  # type: ignore[arg-type]


def test_event_records_the_transition() -> None:
    event = _event(A.APPROVE, data={"note": "ok"})
    assert (event.from_status, event.to_status, event.action) == (S.SUBMITTED, S.IN_PROGRESS, A.APPROVE)
    assert event.data == {"note": "ok"}
    with pytest.raises(TypeError):
        event.data["note"] = "changed"  # type: ignore[index]


def test_event_data_is_copied_not_shared() -> None:
    source = {"assignee": "agent-1"}
    event = _event(A.ASSIGN, data=source)
    source["assignee"] = "agent-2"
    assert event.data["assignee"] == "agent-1"


def test_event_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _event(occurred_at=datetime(2026, 1, 5, 9, 30))
    assert _event(occurred_at=datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=2)))).occurred_at


@pytest.mark.parametrize(
    ("action", "reason", "ok"),
    [
        (A.REJECT, "MANIFESTLY_UNFOUNDED", True),
        (A.REJECT, "IDENTITY_NOT_VERIFIED", True),
        (A.REJECT, None, False),
        (A.REJECT, "because", False),
        (A.EXTEND, "Complex request across 14 systems", True),
        (A.EXTEND, "  ", False),
        (A.EXTEND, None, False),
        (A.FAIL, "crm timed out 5 times", True),
        (A.FAIL, None, False),
        (A.EXTEND, "x" * 2001, False),
        (A.APPROVE, None, True),
        (A.CANCEL, None, True),
    ],
)
def test_event_reason_rules(action: Action, reason: str | None, ok: bool) -> None:
    if ok:
        assert _event(action, reason).reason == reason
    else:
        with pytest.raises(ValidationFailed) as caught:
            _event(action, reason)
        assert caught.value.problems[0].field == "reason"
