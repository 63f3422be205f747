"""The unit of work: one session, one transaction, the repositories that share it."""

from __future__ import annotations

import logging
from functools import cached_property
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.util import greenlet_spawn
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from dsr_gateway.db.driver import bind_driver, flush_pending, forget_pending
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
from dsr_gateway.domain.errors import Conflict, HeldTooLong

logger = logging.getLogger("dsr_gateway.db")

# Failures of concurrency, not of the request: PostgreSQL chose this transaction as a deadlock's victim
# (40P01) or could not serialise it (40001), or another transaction took this one's place first: in a
# subject's hash chain (writers lock the subject before reading its head, so only a writer that did not
# would meet this), as the next notice version (two admins publishing at once), or as a new purpose's key
# (two admins creating it at once). Nothing was saved; the same request sent again succeeds (or, for the
# purpose, is refused or applied as the update it now is).
RETRYABLE_STATES = frozenset({"40P01", "40001"})
CHAIN_INDEX = "uq_consent_event_chain"
RACED_CONSTRAINTS = frozenset({CHAIN_INDEX, "pk_privacy_notice", "ix_purpose_key"})
TRY_AGAIN = (
    "Another change to the same records was being saved at the same moment; nothing of this one was "
    "saved: send it again."
)
# lock_not_available: a statement waited longer than its transaction's lock timeout for rows another
# transaction holds (a consent write's, DSR_CONSENT_LOCK_TIMEOUT_SECONDS: an import holding its subjects).
LOCK_TIMEOUT_STATE = "55P03"


def concurrency_failure(exc: BaseException) -> Conflict | None:
    """The typed, retryable answer to `exc` when it is one of those failures, or a lock waited for too
    long (HeldTooLong); asyncpg's own error (a driver statement) or wrapped by SQLAlchemy's adapter
    (`orig`, then its cause)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        state = getattr(seen, "sqlstate", None)
        if state in RETRYABLE_STATES or getattr(seen, "constraint_name", None) in RACED_CONSTRAINTS:
            return Conflict(TRY_AGAIN)
        if state == LOCK_TIMEOUT_STATE:
            return HeldTooLong()
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


class SqlUnitOfWork:
    session: AsyncSession

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def __aenter__(self) -> Self:
        self.session = self._session_factory()
        return self

    # Repositories are made on first use: a unit of work uses two or three of its fifteen (making them all
    # cost ~4% of a consent write's CPU).
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
    def consent_import(self) -> SqlConsentImport:
        return SqlConsentImport(self.session, self.consents)

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

    def _import_in_use(self) -> SqlConsentImport | None:
        """The import's repository if this unit of work made one: its chunks may be in memory or being
        written (written by `flush`, let end by `settle` before a rollback)."""
        found: SqlConsentImport | None = self.__dict__.get("consent_import")
        return found

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Whatever was not committed explicitly is rolled back: a use case never half-writes.
        forget_pending(self.session)
        if (importer := self._import_in_use()) is not None:
            await importer.settle()
        try:
            await self.session.rollback()
        finally:
            await self.session.close()
        if exc is not None and (conflict := concurrency_failure(exc)) is not None:
            # A typed, retryable answer (ConflictError) instead of an unexpected error.
            raise conflict from exc

    async def flush(self) -> None:
        if (importer := self._import_in_use()) is not None:
            await importer.flush()
        await flush_pending(self.session)  # deferred writes (db/driver.py)
        await self.session.flush()

    async def commit(self) -> None:
        await self.flush()
        try:
            await self.session.commit()
        finally:
            # Ended either way: a failed COMMIT ends the transaction too (its locks, its temporary table).
            if (importer := self._import_in_use()) is not None:
                importer.transaction_ended()

    async def rollback(self) -> None:
        forget_pending(self.session)
        if (importer := self._import_in_use()) is not None:
            await importer.settle()
            importer.transaction_ended()
        await self.session.rollback()


class _DriverOnlySession(Session):
    """The session of a DriverUnitOfWork: a holder for the repositories that never connects (a statement
    through it would run on another connection, outside the unit of work's transaction)."""

    def _connection_for_bind(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this unit of work runs its statements on the driver only (db/driver.py)")


class DriverUnitOfWork(SqlUnitOfWork):
    """PostgreSQL: a unit of work on one pooled connection's asyncpg driver alone, for the consent write
    path, every statement of which is a DriverStatement (db/driver.py).

    It takes the connection from the engine's pool without a Session or a Connection around it and begins,
    commits or rolls back through SQLAlchemy's asyncpg adapter (so the pool sees a connection in its usual
    state): about 0.7 ms less client CPU per transaction than a Session (measured with three statements:
    ~1.1-1.3 ms against ~0.4). A repository method that would go through the session raises instead.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __aenter__(self) -> Self:
        raw = await self._engine.raw_connection()
        # SQLAlchemy's asyncpg adapter (its transaction methods are what its own commit/rollback await).
        adapter: Any = raw.dbapi_connection
        try:
            await adapter._start_transaction()  # BEGIN
        except BaseException:
            await self._discard(raw, every=adapter.driver_connection.is_closed())
            raise
        self._raw: Any = raw
        self._adapter: Any = adapter
        self._driver = adapter.driver_connection
        self.session = AsyncSession(bind=self._engine, sync_session_class=_DriverOnlySession)
        bind_driver(self.session, self._driver)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # As SqlUnitOfWork: whatever was not committed explicitly is rolled back.
        forget_pending(self.session)
        broken = self._driver.is_closed()
        try:
            if self._adapter._transaction is not None and not broken:
                await self._adapter._call_and_discard(self._adapter._transaction.rollback)
        except Exception:
            broken = True  # a connection that cannot roll back does not go back to the pool
            if exc is None:
                raise
            logger.warning("rolling back a failed write failed too; the connection is discarded")
        finally:
            await self.session.close()
            if broken or self._driver.is_closed():
                await self._discard(self._raw, every=self._driver.is_closed())
            else:
                await greenlet_spawn(self._raw.close)  # back to the pool
        if exc is not None and (conflict := concurrency_failure(exc)) is not None:
            raise conflict from exc

    async def _discard(self, raw: Any, *, every: bool) -> None:
        """Close this connection instead of pooling it; when the server closed it (a restart, a failover
        closes them all), also every connection pooled before it, as SQLAlchemy does on a disconnect it
        sees itself (they are closed when next checked out)."""
        if every:
            logger.warning("the database closed a write connection; discarding the pooled connections")
            await greenlet_spawn(self._engine.sync_engine.pool._invalidate, raw)  # raw included
        elif raw.is_valid:
            await greenlet_spawn(raw.invalidate)

    async def flush(self) -> None:
        await flush_pending(self.session)  # its session holds nothing else to flush

    async def commit(self) -> None:
        await flush_pending(self.session)
        transaction = self._adapter._transaction
        if transaction is not None:
            await self._adapter._call_and_discard(transaction.commit)

    async def rollback(self) -> None:
        forget_pending(self.session)
        transaction = self._adapter._transaction
        if transaction is not None:
            await self._adapter._call_and_discard(transaction.rollback)
        await self._adapter._start_transaction()  # what follows is a transaction of its own
