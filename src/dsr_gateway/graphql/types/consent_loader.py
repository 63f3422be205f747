"""The per-request DataLoader of subjects' consent preferences: one batch for every Subject in a query."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.types.consent import Consent

LOADER_KEY = "consents"


def consent_loader(info: Info) -> DataLoader[str, list[Consent]]:
    loaders = info.context.loaders
    if LOADER_KEY not in loaders:
        service = info.context.services.consent

        async def load(external_ids: list[str]) -> list[list[Consent]]:
            views = await service.preferences_of(external_ids)
            return [[Consent.from_domain(v) for v in subject] for subject in views]

        loaders[LOADER_KEY] = DataLoader(load_fn=load)
    loader: DataLoader[str, list[Consent]] = loaders[LOADER_KEY]
    return loader
