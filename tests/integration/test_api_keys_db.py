"""API key names are unique even when two creates race (the unique index decides, as a clear error)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.services.api_keys import ApiKeyService

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
async def uow(database_url: str) -> AsyncIterator[Callable[[], SqlUnitOfWork]]:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    yield lambda: SqlUnitOfWork(factory)
    await engine.dispose()


async def test_a_second_insert_of_a_name_is_a_validation_error_not_a_crash(
    uow: Callable[[], SqlUnitOfWork],
) -> None:
    async with uow() as first:
        await first.api_keys.add("crm", "dsr_aaaaaa", "a" * 64, ["consent:read"], NOW)
        await first.commit()
    with pytest.raises(ValidationFailed) as refused:
        async with uow() as second:  # past the service's name check, as a racing create would be
            await second.api_keys.add("crm", "dsr_bbbbbb", "b" * 64, ["consent:read"], NOW)
    assert refused.value.problems[0].field == "name"
    assert "exists" in refused.value.problems[0].message


async def test_concurrent_creates_of_one_name_make_one_key(uow: Callable[[], SqlUnitOfWork]) -> None:
    service = ApiKeyService(uow, lambda: NOW)
    results = await asyncio.gather(
        *(service.create("shop-backend", ["consent:read"]) for _ in range(4)), return_exceptions=True
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert len(refused) == 3
    assert all(isinstance(r, ValidationFailed) for r in refused), refused
    assert [k.name for k in await service.list()] == ["shop-backend"]
