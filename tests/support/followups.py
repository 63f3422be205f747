"""Run the ledger's follower (receipts and "permission changed" messages) as the worker would."""

from __future__ import annotations

from dsr_gateway.app import build_consent_followups
from dsr_gateway.db.engine import make_engine, make_session_factory
from dsr_gateway.db.uow import SqlUnitOfWork
from dsr_gateway.services.consent_followups import FollowUpRun
from tests.support.app import make_settings


async def follow_up(database_url: str) -> FollowUpRun:
    """Follow the consent ledger to its end with the test app's settings (signing key, templates)."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    try:
        followups = build_consent_followups(make_settings(database_url), lambda: SqlUnitOfWork(factory))
        return await followups.run_until_idle()
    finally:
        await engine.dispose()
