"""Root fields that name a subject: `me` for the signed-in subject, `subject` for staff."""

from __future__ import annotations

import strawberry

from dsr_gateway.domain.principal import PrincipalKind
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.permissions import IsStaff
from dsr_gateway.graphql.types.subject import Subject


@strawberry.type
class SubjectQuery:
    @strawberry.field(description="The signed-in subject; null for anyone else.")
    def me(self, info: Info) -> Subject | None:
        principal = info.context.principal
        if principal.kind is not PrincipalKind.SUBJECT or principal.id is None:
            return None
        return Subject(external_id=principal.id)

    @strawberry.field(description="Any subject by external id (staff).", permission_classes=[IsStaff])
    def subject(self, info: Info, external_id: str) -> Subject:
        return Subject(external_id=external_id)
