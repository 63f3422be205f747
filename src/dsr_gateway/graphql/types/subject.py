"""The subject as clients see it; each area adds its own fields (consents, requests ...)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from dsr_gateway.domain.errors import PermissionDenied
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.types.audit import ConsentReceipt


@strawberry.type(description="A person whose permissions and requests the gateway keeps.")
class Subject:
    external_id: str = strawberry.field(description="The business's identifier of this person.")

    @strawberry.field(description="Signed consent receipts, newest first (at most 200).")
    async def consent_receipts(self, info: Info, first: int = 50) -> list[ConsentReceipt]:
        try:
            receipts = await info.context.services.receipts.list_for(
                info.context.principal, self.external_id, first
            )
        except PermissionDenied as exc:
            raise GraphQLError(exc.message) from exc
        return [ConsentReceipt.from_domain(r) for r in receipts]
