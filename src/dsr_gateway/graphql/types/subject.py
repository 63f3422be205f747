"""The subject as clients see it; each area adds its own fields (consents, requests ...)."""

from __future__ import annotations

import strawberry

from dsr_gateway.domain.errors import PermissionDenied
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import query_error
from dsr_gateway.graphql.observability import note_access
from dsr_gateway.graphql.types.audit import ConsentReceipt
from dsr_gateway.graphql.types.comms import GpcConflict, subject_gpc_conflicts
from dsr_gateway.graphql.types.consent import Consent
from dsr_gateway.graphql.types.consent_loader import consent_loader, receipts_loader
from dsr_gateway.graphql.types.request import PrivacyRequest, subject_privacy_requests


@strawberry.type(description="A person whose permissions and requests the gateway keeps.")
class Subject:
    external_id: str = strawberry.field(description="The business's identifier of this person.")

    @strawberry.field(description="Signed consent receipts, newest first (at most 200).")
    async def consent_receipts(self, info: Info, first: int = 50) -> list[ConsentReceipt]:
        receipts = await receipts_loader(info, first).load(self.external_id)
        if isinstance(receipts, PermissionDenied):
            raise query_error(receipts) from receipts
        note_access(info, "subject.consentReceipts", self.external_id)
        return [ConsentReceipt.from_domain(r) for r in receipts]

    @strawberry.field(
        description="Every purpose with this subject's choice and what it means now, then each topic or "
        "channel choice."
    )
    async def consents(self, info: Info) -> list[Consent]:
        note_access(info, "subject.consents", self.external_id)
        return await consent_loader(info).load(self.external_id)

    gpc_conflicts: list[GpcConflict] = strawberry.field(
        resolver=subject_gpc_conflicts,
        description="Purposes where a Global Privacy Control signal overrode your explicit opt-in.",
    )

    privacy_requests: list[PrivacyRequest] = strawberry.field(
        resolver=subject_privacy_requests, description="Their privacy requests, newest first."
    )
