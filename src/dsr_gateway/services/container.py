"""The services a request can use, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from dsr_gateway.services.api_keys import ApiKeyService
from dsr_gateway.services.audit import AuditService
from dsr_gateway.services.audit_trail import AuditTrailService
from dsr_gateway.services.catalogue import CatalogueService
from dsr_gateway.services.comms.breach import BreachService
from dsr_gateway.services.comms.contacts import ContactService
from dsr_gateway.services.comms.links import LinkService
from dsr_gateway.services.comms.reviews import ReviewService
from dsr_gateway.services.consent import ConsentService
from dsr_gateway.services.consent_followups import ConsentFollowUps
from dsr_gateway.services.consent_lifecycle import ConsentLifecycleService
from dsr_gateway.services.exports import ExportService
from dsr_gateway.services.fulfilment.planner import LegalHoldService
from dsr_gateway.services.fulfilment.queries import FulfilmentQueryService
from dsr_gateway.services.fulfilment.runner import FulfilmentRunner
from dsr_gateway.services.outbox import OutboxService
from dsr_gateway.services.ports import EventBus
from dsr_gateway.services.receipts import ReceiptService
from dsr_gateway.services.reports import ReportService
from dsr_gateway.services.requests import (
    RequestActionService,
    RequestIntakeService,
    RequestQueryService,
    SlaSweepService,
)
from dsr_gateway.services.webhooks import WebhookService


@dataclass(frozen=True)
class Services:
    catalogue: CatalogueService
    api_keys: ApiKeyService
    events: EventBus
    audit: AuditService
    receipts: ReceiptService
    webhooks: WebhookService
    exports: ExportService
    consent: ConsentService
    consent_followups: ConsentFollowUps
    request_intake: RequestIntakeService
    request_actions: RequestActionService
    request_queries: RequestQueryService
    sla_sweep: SlaSweepService
    outbox: OutboxService
    fulfilment: FulfilmentRunner
    fulfilment_queries: FulfilmentQueryService
    legal_holds: LegalHoldService
    reports: ReportService
    audit_trail: AuditTrailService
    reviews: ReviewService
    consent_lifecycle: ConsentLifecycleService
    breach: BreachService
    contacts: ContactService
    links: LinkService
