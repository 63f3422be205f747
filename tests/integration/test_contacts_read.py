"""A subject's contact: its stored address, else the newest one it gave in a request; the same whether
read on its own or with the subject's lock by a consent write (repositories/comms.py, consent.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.services.comms.ports import Contact


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


async def _seed(engine: AsyncEngine) -> dict[str, int]:
    now = datetime.now(UTC)
    async with SqlUnitOfWork(make_session_factory(engine)) as uow:
        ids = await uow.consents.ensure_subjects(["none", "given", "stored", "language-only"], now)
        await uow.identities.add(ids["given"], ("old-cipher", "h1"), None, now)
        await uow.identities.add(ids["given"], ("new-cipher", "h2"), None, now)
        await uow.identities.add(ids["given"], None, ("phone", "h3"), now)  # no address: not a candidate
        await uow.identities.add(ids["stored"], ("request-cipher", "h4"), None, now)
        await uow.comms.set_contact(ids["stored"], "stored-cipher", "s***", "fr", now)
        await uow.identities.add(ids["language-only"], ("lang-cipher", "h5"), None, now)
        await uow.comms.set_contact(ids["language-only"], None, None, "de", now)
        await uow.commit()
    return ids


EXPECTED = {
    "none": (None, None),
    "given": ("new-cipher", None),
    "stored": ("stored-cipher", "fr"),
    "language-only": ("lang-cipher", "de"),
}


async def test_contacts_prefer_the_stored_address_then_the_newest_given(engine: AsyncEngine) -> None:
    ids = await _seed(engine)
    async with SqlUnitOfWork(make_session_factory(engine)) as uow:
        many = await uow.comms.contacts(list(ids.values()))
        one_by_one = {name: (await uow.comms.contacts([i]))[i] for name, i in ids.items()}
    for name, (email, language) in EXPECTED.items():
        expected = Contact(ids[name], name, email, language)
        assert many[ids[name]] == expected
        assert one_by_one[name] == expected


async def test_the_contact_read_with_the_lock_is_the_same(engine: AsyncEngine) -> None:
    ids = await _seed(engine)
    for name, (email, language) in EXPECTED.items():
        async with SqlUnitOfWork(make_session_factory(engine)) as uow:
            found = (await uow.consents.lock_with_catalogue(name, None)).subject_id
            assert found == ids[name]
            assert await uow.comms.contacts([found]) == {found: Contact(found, name, email, language)}
