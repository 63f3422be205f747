"""Per-request DataLoaders of subjects' consent preferences and receipts: one batch for every Subject."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from dsr_gateway.domain.errors import PermissionDenied
from dsr_gateway.domain.receipts import StoredReceipt
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.types.consent import Consent

LOADER_KEY = "consents"


def consent_loader(info: Info) -> DataLoader[str, list[Consent]]:
    service = info.context.services.consent

    async def load(external_ids: list[str]) -> list[list[Consent]]:
        views = await service.preferences_of(external_ids)
        return [[Consent.from_domain(v) for v in subject] for subject in views]

    return info.context.loader(LOADER_KEY, load)


Receipts = Sequence[StoredReceipt] | PermissionDenied


def receipts_loader(info: Info, first: int) -> DataLoader[str, Receipts]:
    """Keyed by subject; one loader per page size asked for (`consentReceipts(first:)`)."""
    ctx = info.context

    async def load(external_ids: list[str]) -> list[Receipts]:
        found = await ctx.services.receipts.lists_for(ctx.principal, external_ids, first)
        return [found[e] for e in external_ids]

    # A denial is a value here, not an error of the whole batch: the resolver raises it.
    return ctx.loader(f"consent_receipts:{first}", load)
