"""Expected failures of the domain.

They carry data as attributes and no HTTP or GraphQL codes; the edge (graphql/errors.py) translates each
into a typed union member. Every message is written for a person who can act on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class DomainError(Exception):
    """Base of every expected failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one input field; `field` is a dotted path such as `choices.0.purpose`."""

    field: str
    message: str


class ValidationFailed(DomainError):
    """The input breaks a rule; nothing was recorded."""

    def __init__(self, problems: Iterable[FieldProblem], message: str | None = None) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        summary = "; ".join(f"{p.field}: {p.message}" for p in self.problems)
        super().__init__(message or f"The input is not valid: {summary}")

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldProblem(field, message)])


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"No {kind} with key {key!r} was found.")


class PermissionDenied(DomainError):
    """The caller may not do this; says so without revealing whether the object exists."""

    def __init__(self, message: str = "You do not have permission to do this.") -> None:
        super().__init__(message)


class Conflict(DomainError):
    """The request clashes with the current state of the object."""


HELD_TOO_LONG = (
    "The records this change needs are held by a longer change still under way (a consent import, for "
    "example); nothing of this one was saved: send it again in a little while."
)


class HeldTooLong(Conflict):
    """Another transaction held what the request needed for longer than the lock timeout (a consent import
    holds its subjects until it commits): nothing was saved; sending it again at once would wait again."""

    def __init__(self, message: str = HELD_TOO_LONG) -> None:
        super().__init__(message)


class IllegalTransition(Conflict):
    """A workflow action that the current status does not allow."""

    def __init__(self, action: str, current_status: str, allowed_actions: Sequence[str]) -> None:
        self.action = action
        self.current_status = current_status
        self.allowed_actions = tuple(allowed_actions)
        allowed = ", ".join(self.allowed_actions) or "none"
        super().__init__(
            f"Cannot {action} a request that is {current_status}; allowed actions now: {allowed}."
        )


class StaleVersion(Conflict):
    """Someone else changed the object since the caller read it."""

    def __init__(self, kind: str, key: str, expected: int, actual: int) -> None:
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"The {kind} {key} was changed by someone else (version {actual}, you had {expected}); "
            "reload it and try again."
        )


class ClockRuleRefused(Conflict):
    """A pause or extension that the regime's legal clock does not allow.

    `code` says which rule refused it (e.g. `NO_EXTENSION_IN_REGIME`), so the edge can map it without
    parsing the message; `rule_id` names the stored SLA rule that was applied.
    """

    def __init__(self, rule_id: str, code: str, message: str) -> None:
        self.rule_id = rule_id
        self.code = code
        super().__init__(message)
