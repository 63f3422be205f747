"""The unit of work: one session, one transaction, the repositories that share it."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import flush_pending, forget_pending
from dsr_gateway.db.repositories.api_keys import SqlApiKeyRepository
from dsr_gateway.db.repositories.catalogue import SqlNoticeRepository, SqlPurposeRepository
from dsr_gateway.db.repositories.comms import SqlCommsRepository
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.db.repositories.exports import SqlExportPackageRepository
from dsr_gateway.db.repositories.fulfilment_steps import SqlFulfilmentStepRepository
from dsr_gateway.db.repositories.identity import SqlIdentityRepository
from dsr_gateway.db.repositories.outbox import SqlOutboxRepository
from dsr_gateway.db.repositories.receipts import SqlConsentReceiptRepository
from dsr_gateway.db.repositories.requests import SqlPrivacyRequestRepository
from dsr_gateway.db.repositories.subjects import SqlSubjectRepository
from dsr_gateway.db.repositories.webhooks import SqlWebhookRepository


class SqlUnitOfWork:
    """Repositories are made on first use: a use case touches a few of the fourteen."""

    session: AsyncSession

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def __aenter__(self) -> Self:
        self.session = self._session_factory()
        for name in REPOSITORIES:  # a unit of work entered again starts with fresh repositories
            self.__dict__.pop(name, None)
        return self

    @cached_property
    def purposes(self) -> SqlPurposeRepository:
        return SqlPurposeRepository(self.session)

    @cached_property
    def notices(self) -> SqlNoticeRepository:
        return SqlNoticeRepository(self.session)

    @cached_property
    def api_keys(self) -> SqlApiKeyRepository:
        return SqlApiKeyRepository(self.session)

    @cached_property
    def subjects(self) -> SqlSubjectRepository:
        return SqlSubjectRepository(self.session)

    @cached_property
    def consent_receipts(self) -> SqlConsentReceiptRepository:
        return SqlConsentReceiptRepository(self.session)

    @cached_property
    def webhooks(self) -> SqlWebhookRepository:
        return SqlWebhookRepository(self.session)

    @cached_property
    def exports(self) -> SqlExportPackageRepository:
        return SqlExportPackageRepository(self.session)

    @cached_property
    def consents(self) -> SqlConsentLedger:
        return SqlConsentLedger(self.session)

    @cached_property
    def requests(self) -> SqlPrivacyRequestRepository:
        return SqlPrivacyRequestRepository(self.session)

    @cached_property
    def identities(self) -> SqlIdentityRepository:
        return SqlIdentityRepository(self.session)

    @cached_property
    def outbox(self) -> SqlOutboxRepository:
        return SqlOutboxRepository(self.session)

    @cached_property
    def fulfilment(self) -> SqlFulfilmentStepRepository:
        return SqlFulfilmentStepRepository(self.session)

    @cached_property
    def comms(self) -> SqlCommsRepository:
        return SqlCommsRepository(self.session)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Whatever was not committed explicitly is rolled back: a use case never half-writes.
        forget_pending(self.session)
        try:
            await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await flush_pending(self.session)  # deferred writes (db/driver.py) go with the commit
        await self.session.commit()

    async def rollback(self) -> None:
        forget_pending(self.session)
        await self.session.rollback()


REPOSITORIES = [n for n, v in vars(SqlUnitOfWork).items() if isinstance(v, cached_property)]
