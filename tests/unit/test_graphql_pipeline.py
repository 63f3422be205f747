"""The per-request GraphQL pipeline: a query seen before is neither parsed nor validated again."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema

from dsr_gateway.graphql.schema import build_schema


@pytest.mark.parametrize("production", [False, True])
async def test_a_repeated_query_is_validated_once(monkeypatch: pytest.MonkeyPatch, production: bool) -> None:
    calls: list[Any] = []
    validate = strawberry_schema.validate_document

    def counting(*args: Any) -> Any:
        calls.append(args)
        return validate(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", counting)
    schema = build_schema(production=production)
    for _ in range(3):
        result = await schema.execute("{ __typename }")
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert len(calls) == 1


async def test_the_limits_still_apply_from_the_cache() -> None:
    schema = build_schema(max_depth=1)
    for _ in range(2):  # the second answer comes from the validation cache
        result = await schema.execute("{ purposes { topics { key } } }")
        assert result.errors is not None
        assert "exceeds maximum operation depth of 1" in result.errors[0].message
