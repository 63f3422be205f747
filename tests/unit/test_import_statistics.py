"""After an import: which ledger tables' planner statistics it outdates (outdated_statistics), and the
records a chunk hands to the next (ImportFold.records_of)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    Origin,
    Scope,
)
from dsr_gateway.domain.consent_import import (
    ANALYZE_AFTER_ROWS,
    ImportFold,
    TableGrowth,
    outdated_statistics,
)

N = ANALYZE_AFTER_ROWS


@pytest.mark.parametrize(
    ("added", "planner_rows", "outdated"),
    [
        (N, -1.0, True),  # never counted (a new database): the first big import
        (N - 1, -1.0, False),  # too few rows to matter
        (N, 0.0, True),  # counted empty
        (N, float(N), True),  # doubled
        (N, float(N + 1), False),  # grew by less than it held: the planner scales from the table's size
        (5 * N, float(4 * N), True),
        (5 * N, float(6 * N), False),
        (0, -1.0, False),
    ],
)
def test_a_table_is_analyzed_when_the_import_is_big_and_at_least_doubles_it(
    added: int, planner_rows: float, outdated: bool
) -> None:
    assert outdated_statistics({"consent_event": TableGrowth(added, planner_rows)}) == (
        ["consent_event"] if outdated else []
    )


def test_each_table_is_judged_on_its_own() -> None:
    growth = {
        "subject": TableGrowth(N, 10.0 * N),
        "consent_event": TableGrowth(4 * N, -1.0),
        "consent_state": TableGrowth(4 * N, 1.0 * N),
    }
    assert outdated_statistics(growth) == ["consent_event", "consent_state"]


def event(event_id: int, subject: int, purpose: str, action: ConsentAction) -> ConsentEvent:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    return ConsentEvent(
        id=event_id,
        subject_id=subject,
        scope=Scope(purpose),
        action=action,
        method=ConsentMethod.IMPORT,
        notice_version=1,
        origin=Origin(),
        actor=Actor(ActorKind.SYSTEM, "import"),
        occurred_at=when,
        recorded_at=when,
    )


def test_records_of_gives_every_known_record_of_each_subject_asked_for() -> None:
    fold = ImportFold({})
    fold.add(event(1, 7, "marketing_email", ConsentAction.GRANT))
    fold.add(event(2, 7, "analytics", ConsentAction.OBJECT))
    fold.add(event(3, 8, "marketing_email", ConsentAction.GRANT))
    fold.add(event(4, 7, "marketing_email", ConsentAction.WITHDRAW))
    carried = fold.records_of({7, 9})
    assert set(carried) == {7, 9}
    assert carried[9] == []
    by_purpose = {r.scope.purpose: r for r in carried[7]}
    assert set(by_purpose) == {"marketing_email", "analytics"}
    assert by_purpose["marketing_email"].last_event_id == 4
    # A later chunk folding on from them continues where this one stopped.
    later = ImportFold(carried)
    later.add(event(5, 7, "marketing_email", ConsentAction.GRANT))
    new, replaced = later.changed()
    assert new == []
    assert [(s, r.last_event_id) for s, r in replaced] == [(7, 5)]
