"""Root fields of the compliance report (staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from dsr_gateway.domain.errors import DomainError
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import query_error
from dsr_gateway.graphql.permissions import IsStaff
from dsr_gateway.graphql.types.reports import ComplianceReport


@strawberry.type
class ReportQuery:
    @strawberry.field(
        description="Consents and requests over [from, to) (staff). The same as CSV: `dsr-gateway report`.",
        permission_classes=[IsStaff],
    )
    async def compliance_report(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> ComplianceReport:
        try:
            report = await info.context.services.reports.compliance(info.context.principal, from_, to)
        except DomainError as exc:
            raise query_error(exc) from exc
        return ComplianceReport.from_domain(report)
