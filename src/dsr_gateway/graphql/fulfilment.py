"""Root fields of fulfilment: the declared data systems, a request's access package, legal holds."""

from __future__ import annotations

from typing import Annotated

import strawberry

from dsr_gateway.domain.errors import DomainError
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_from_domain,
)
from dsr_gateway.graphql.permissions import IsStaff
from dsr_gateway.graphql.requests import PrivacyRequestSuccess
from dsr_gateway.graphql.types.fulfilment import DataSystem, ExportPackage, request_export
from dsr_gateway.graphql.types.request import PrivacyRequest

PlaceLegalHoldResult = Annotated[
    PrivacyRequestSuccess | ValidationError | NotFoundError | PermissionDeniedError | ConflictError,
    strawberry.union("PlaceLegalHoldResult"),
]


@strawberry.type
class FulfilmentQuery:
    @strawberry.field(
        description="The data systems of the systems file (staff).", permission_classes=[IsStaff]
    )
    def data_systems(self, info: Info) -> list[DataSystem]:
        systems = info.context.services.fulfilment_queries.data_systems(info.context.principal)
        return [DataSystem.from_domain(s) for s in systems]

    @strawberry.field(
        description="A request's access package: staff, API clients with export:read, or its subject; "
        "null when there is none or you may not see it."
    )
    async def export_package(self, info: Info, request_id: strawberry.ID) -> ExportPackage | None:
        return await request_export(info, str(request_id))


@strawberry.type
class FulfilmentMutation:
    @strawberry.mutation(
        description="Keep a data category of an erasure request, with the reason (staff, before approval)."
    )
    async def place_legal_hold(
        self, info: Info, id: strawberry.ID, category: str, reason: str
    ) -> PlaceLegalHoldResult:
        ctx = info.context
        try:
            await ctx.services.legal_holds.place(ctx.principal, str(id), category, reason)
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        view = await ctx.services.request_queries.get(ctx.principal, str(id))
        assert view is not None  # staff see every request
        return PrivacyRequestSuccess(request=PrivacyRequest.from_view(view))
