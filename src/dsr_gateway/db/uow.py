"""The unit of work: one session, one transaction, the repositories that share it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import flush_pending, forget_pending
from dsr_gateway.db.repositories.api_keys import SqlApiKeyRepository
from dsr_gateway.db.repositories.catalogue import SqlNoticeRepository, SqlPurposeRepository
from dsr_gateway.db.repositories.comms import SqlCommsRepository
from dsr_gateway.db.repositories.consent import SqlConsentLedger
from dsr_gateway.db.repositories.consent_import import SqlConsentImport
from dsr_gateway.db.repositories.exports import SqlExportPackageRepository
from dsr_gateway.db.repositories.fulfilment_steps import SqlFulfilmentStepRepository
from dsr_gateway.db.repositories.identity import SqlIdentityRepository
from dsr_gateway.db.repositories.outbox import SqlOutboxRepository
from dsr_gateway.db.repositories.receipts import SqlConsentReceiptRepository
from dsr_gateway.db.repositories.requests import SqlPrivacyRequestRepository
from dsr_gateway.db.repositories.subjects import SqlSubjectRepository
from dsr_gateway.db.repositories.webhooks import SqlWebhookRepository
from dsr_gateway.domain.errors import Conflict

# Failures of concurrency, not of the request: PostgreSQL chose this transaction as a deadlock's victim
# (40P01) or could not serialise it (40001), or another transaction took this one's place first: in a
# subject's hash chain (an import reads the heads of the subjects it extends without locking them, so a
# live write in between wins), as the next notice version (two admins publishing at once), or as a new
# purpose's key (two admins creating it at once). Nothing was saved; the same request sent again succeeds
# (or, for the purpose, is refused or applied as the update it now is).
RETRYABLE_STATES = frozenset({"40P01", "40001"})
CHAIN_INDEX = "uq_consent_event_chain"
RACED_CONSTRAINTS = frozenset({CHAIN_INDEX, "pk_privacy_notice", "ix_purpose_key"})
TRY_AGAIN = (
    "Another change to the same records was being saved at the same moment; nothing of this one was "
    "saved: send it again."
)


def concurrency_failure(exc: BaseException) -> bool:
    """Whether `exc` is one of those failures: asyncpg's own (a driver statement) or wrapped by
    SQLAlchemy's adapter (`orig`, then its cause)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) in RETRYABLE_STATES:
            return True
        if getattr(seen, "constraint_name", None) in RACED_CONSTRAINTS:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class SqlUnitOfWork:
    session: AsyncSession
    purposes: SqlPurposeRepository
    notices: SqlNoticeRepository
    api_keys: SqlApiKeyRepository
    subjects: SqlSubjectRepository
    consent_receipts: SqlConsentReceiptRepository
    webhooks: SqlWebhookRepository
    exports: SqlExportPackageRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def __aenter__(self) -> Self:
        self.session = self._session_factory()
        self.purposes = SqlPurposeRepository(self.session)
        self.notices = SqlNoticeRepository(self.session)
        self.api_keys = SqlApiKeyRepository(self.session)
        self.subjects = SqlSubjectRepository(self.session)
        self.consent_receipts = SqlConsentReceiptRepository(self.session)
        self.webhooks = SqlWebhookRepository(self.session)
        self.exports = SqlExportPackageRepository(self.session)
        self.consents = SqlConsentLedger(self.session)
        self.consent_import = SqlConsentImport(self.session, self.consents)
        self.requests = SqlPrivacyRequestRepository(self.session)
        self.identities = SqlIdentityRepository(self.session)
        self.outbox = SqlOutboxRepository(self.session)
        self.fulfilment = SqlFulfilmentStepRepository(self.session)
        self.comms = SqlCommsRepository(self.session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Whatever was not committed explicitly is rolled back: a use case never half-writes.
        forget_pending(self.session)
        try:
            await self.session.rollback()
        finally:
            await self.session.close()
        if exc is not None and concurrency_failure(exc):
            # A typed, retryable answer (ConflictError) instead of an unexpected error.
            raise Conflict(TRY_AGAIN) from exc

    async def commit(self) -> None:
        await flush_pending(self.session)  # deferred writes (db/driver.py) go with the commit
        await self.session.commit()

    async def rollback(self) -> None:
        forget_pending(self.session)
        await self.session.rollback()
