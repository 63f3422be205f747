"""Every table, imported so that SQLModel.metadata knows them all (migrations compare against it)."""

from sqlmodel import SQLModel

# Named constraints, so that migrations can alter them the same way on SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# ruff: noqa: E402
from dsr_gateway.db.tables.access import ApiKeyRow
from dsr_gateway.db.tables.accountability import PersonalDataAccessRow
from dsr_gateway.db.tables.audit import AuditCheckpointRow, ConsentReceiptRow
from dsr_gateway.db.tables.catalogue import NoticePurposeRow, PrivacyNoticeRow, PurposeRow
from dsr_gateway.db.tables.comms import (
    BreachNoticeRow,
    BreachRecipientRow,
    CampaignSendRow,
    GpcSignalRow,
    SubjectContactRow,
)
from dsr_gateway.db.tables.consent import ConsentEventRow, ConsentFollowUpRow, ConsentStateRow
from dsr_gateway.db.tables.exports import ExportPackageRow
from dsr_gateway.db.tables.fulfilment_steps import FulfilmentStepRow, RequestLegalHoldRow
from dsr_gateway.db.tables.identity import SubjectIdentityRow, VerificationChallengeRow
from dsr_gateway.db.tables.outbox import OutboxDeliveryRow, OutboxRow
from dsr_gateway.db.tables.requests import (
    PrivacyRequestEventRow,
    PrivacyRequestRow,
    RequestPauseRow,
    SlaAlertRow,
)
from dsr_gateway.db.tables.subjects import SubjectRow
from dsr_gateway.db.tables.webhooks import WebhookDeliveryRow, WebhookSubscriptionRow

metadata = SQLModel.metadata

__all__ = [
    "ApiKeyRow",
    "AuditCheckpointRow",
    "BreachNoticeRow",
    "BreachRecipientRow",
    "CampaignSendRow",
    "ConsentEventRow",
    "ConsentFollowUpRow",
    "ConsentReceiptRow",
    "ConsentStateRow",
    "ExportPackageRow",
    "FulfilmentStepRow",
    "GpcSignalRow",
    "NoticePurposeRow",
    "OutboxDeliveryRow",
    "OutboxRow",
    "PersonalDataAccessRow",
    "PrivacyNoticeRow",
    "PrivacyRequestEventRow",
    "PrivacyRequestRow",
    "PurposeRow",
    "RequestLegalHoldRow",
    "RequestPauseRow",
    "SlaAlertRow",
    "SubjectContactRow",
    "SubjectIdentityRow",
    "SubjectRow",
    "VerificationChallengeRow",
    "WebhookDeliveryRow",
    "WebhookSubscriptionRow",
    "metadata",
]
