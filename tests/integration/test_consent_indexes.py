"""The consent ledger's lookups can use the indexes made for them (a partial index must be implied by the
query's own conditions, or the planner cannot use it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.repositories import consent as consent_repository
from dsr_gateway.db.repositories.consent import D_EVENTS_FOR_KEY
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentMethod,
    NewConsentEvent,
    Origin,
    Scope,
)
from dsr_gateway.domain.purposes import ConsentMechanism, LegalBasis, Purpose, PurposeCategory


async def test_a_replay_finds_its_key_through_the_keyed_events_index(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            compiled = D_EVENTS_FOR_KEY.compiled_for(connection.dialect, {"subject_id": 1, "key": "k"})
            if connection.dialect.name == "sqlite":
                # INDEXED BY fails the statement when the index cannot serve the query.
                sql = compiled.text.replace(
                    "FROM consent_event", "FROM consent_event INDEXED BY ix_consent_event_idempotency"
                )
                assert sql != compiled.text
                plan = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1, "k"))
            else:
                # The other indexes on subject_id and the sequential scan out of the way (rolled back).
                await connection.execute(text("DROP INDEX ix_consent_event_subject_id_id"))
                await connection.execute(text("DROP INDEX uq_consent_event_chain"))
                await connection.execute(text("SET LOCAL enable_seqscan = off"))
                plan = await connection.exec_driver_sql(
                    "EXPLAIN " + compiled.text.replace("$1", "1").replace("$2", "'k'")
                )
            lines = " ".join(str(row[-1]) for row in plan)
            await connection.rollback()
        assert "ix_consent_event_idempotency" in lines, lines
    finally:
        await engine.dispose()


async def test_events_for_keys_answers_every_pair_with_its_own_events_in_ledger_order(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consent_repository, "KEY_PAIRS_PER_STATEMENT", 2)  # SQLite's chunks, several
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            await uow.purposes.add(PURPOSE, now)
            ids = await uow.consents.ensure_subjects(["k-a", "k-b", "k-c"], now)
            a, b, c = ids["k-a"], ids["k-b"], ids["k-c"]
            await uow.consents.append(
                [
                    (a, _event("GRANT", "one", now)),
                    (a, _event("WITHDRAW", "one", now)),
                    (a, _event("GRANT", "two", now)),
                    (b, _event("GRANT", "one", now)),
                    (c, _event("GRANT", None, now)),
                ]
            )
            await uow.commit()
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            found = await uow.consents.events_for_keys(
                [(a, "one"), (b, "one"), (b, "two"), (c, "one"), (a, "two")]
            )
    finally:
        await engine.dispose()
    actions = {pair: [e.action.value for e in events] for pair, events in found.items()}
    assert actions == {
        (a, "one"): ["GRANT", "WITHDRAW"],
        (b, "one"): ["GRANT"],
        (b, "two"): [],
        (c, "one"): [],
        (a, "two"): ["GRANT"],
    }
    assert all(
        e.subject_id == s and e.idempotency_key == k for (s, k), events in found.items() for e in events
    )


PURPOSE = Purpose(
    "keyed_email", "Keyed email", "", LegalBasis.CONSENT, ConsentMechanism.OPT_IN, PurposeCategory.MARKETING
)


def _event(action: str, key: str | None, now: datetime) -> NewConsentEvent:
    actor = Actor(ActorKind.API_CLIENT, "c")
    return NewConsentEvent(
        Scope(PURPOSE.key), ConsentAction(action), ConsentMethod.API, None, Origin(), actor, now, now, key
    )
