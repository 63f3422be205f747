"""Which database failures a unit of work answers as a typed ConflictError (and which of them a consent write
tries again), table-driven over the errors as asyncpg raises them and as SQLAlchemy wraps them."""

from __future__ import annotations

import pytest

from dsr_gateway.db.uow import CHAIN_INDEX, TRY_AGAIN, concurrency_failure
from dsr_gateway.domain.errors import HELD_TOO_LONG, Conflict, HeldTooLong


class DriverError(Exception):
    """What asyncpg raises: the SQLSTATE and, for a constraint, its name."""

    def __init__(self, sqlstate: str, constraint_name: str | None = None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.constraint_name = constraint_name


class Wrapped(Exception):
    """What SQLAlchemy's adapter raises around it (`orig`)."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(str(orig))
        self.orig = orig


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (DriverError("40P01"), (Conflict, TRY_AGAIN)),  # a deadlock's victim
        (DriverError("40001"), (Conflict, TRY_AGAIN)),  # could not serialise
        (DriverError("23505", CHAIN_INDEX), (Conflict, TRY_AGAIN)),  # a chain place taken in between
        (DriverError("23505", "pk_privacy_notice"), (Conflict, TRY_AGAIN)),
        (DriverError("55P03"), (HeldTooLong, HELD_TOO_LONG)),  # waited the lock timeout
        (Wrapped(DriverError("55P03")), (HeldTooLong, HELD_TOO_LONG)),
        (Wrapped(DriverError("40P01")), (Conflict, TRY_AGAIN)),
        (DriverError("23505", "ix_subject_external_id"), None),  # another unique rule: the request's own
        (DriverError("23503"), None),  # a foreign key: a bug, not a race
        (DriverError("57014"), None),  # statement timeout: not a lock
        (ValueError("not the database"), None),
    ],
)
def test_a_failure_is_answered_by_its_kind(
    error: BaseException, answer: tuple[type[Conflict], str] | None
) -> None:
    found = concurrency_failure(error)
    if answer is None:
        assert found is None
        return
    kind, message = answer
    assert type(found) is kind
    assert found.message == message


def test_a_failure_raised_from_another_is_found_through_its_cause() -> None:
    outer = RuntimeError("while writing")
    outer.__cause__ = DriverError("55P03")
    assert isinstance(concurrency_failure(outer), HeldTooLong)
