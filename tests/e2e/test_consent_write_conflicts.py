"""A consent write the database keeps giving up for concurrent ones (a deadlock victim, a chain place taken)
is tried three times; after that the caller gets a ConflictError saying to send it again, not a masked
error, and nothing is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from dsr_gateway.db.uow import TRY_AGAIN
from dsr_gateway.domain.errors import Conflict
from dsr_gateway.services.consent import ConsentService
from tests.support.app import GraphQLClient, subject_token
from tests.support.consent_factories import EVENTS, seed_catalogue, set_consents, withdraw


@pytest.mark.parametrize("mutation", ["setConsents", "withdrawConsent"])
async def test_a_write_given_up_three_times_is_a_conflict_error(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, mutation: str
) -> None:
    await seed_catalogue(gql)
    attempts: list[str] = []

    async def given_up(self: ConsentService, *args: Any, **kwargs: Any) -> Any:
        attempts.append(mutation)
        raise Conflict(TRY_AGAIN)

    monkeypatch.setattr(ConsentService, "_write", given_up)
    token = subject_token("conflict-1")
    if mutation == "setConsents":
        result = await set_consents(gql, token=token)
    else:
        result = await withdraw(gql, token=token, purpose="marketing_email")
    assert result == {"__typename": "ConflictError", "message": TRY_AGAIN}
    assert len(attempts) >= 3  # tried again before answering (a batch's attempt may come first)
    history = await gql(EVENTS, {"subjectId": "conflict-1"}, token=token)
    assert history["consentEvents"]["edges"] == []
