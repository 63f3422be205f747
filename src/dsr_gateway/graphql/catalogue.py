"""Root fields for purposes and privacy notices: public reads, admin writes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from dsr_gateway.domain import notices, purposes
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import (
    ConflictError,
    PermissionDeniedError,
    ValidationError,
    error_from_domain,
)
from dsr_gateway.graphql.types.catalogue import (
    Channel,
    ConsentMechanism,
    LegalBasis,
    PrivacyNotice,
    Purpose,
    PurposeCategory,
)


@strawberry.input
class TopicInput:
    key: str
    title: str
    description: str = ""


@strawberry.input(description="A purpose to create, or to change when the key exists.")
class UpsertPurposeInput:
    key: str
    title: str
    description: str
    legal_basis: LegalBasis
    mechanism: ConsentMechanism
    category: PurposeCategory
    channels: list[Channel] = strawberry.field(default_factory=list)
    topics: list[TopicInput] = strawberry.field(default_factory=list)
    recipients: list[str] = strawberry.field(default_factory=list)
    reconfirm_after_days: int | None = None
    gpc_opt_out: bool = False
    expected_version: int | None = strawberry.field(
        default=None, description="The version you edited; a newer one makes this a ConflictError."
    )

    def to_domain(self) -> purposes.Purpose:
        return purposes.Purpose(
            key=self.key,
            title=self.title,
            description=self.description,
            legal_basis=purposes.LegalBasis(self.legal_basis),
            mechanism=purposes.ConsentMechanism(self.mechanism),
            category=purposes.PurposeCategory(self.category),
            channels=tuple(purposes.Channel(c) for c in self.channels),
            topics=tuple(purposes.Topic(t.key, t.title, t.description) for t in self.topics),
            recipients=tuple(self.recipients),
            reconfirm_after_days=self.reconfirm_after_days,
            gpc_opt_out=self.gpc_opt_out,
        )


@strawberry.input
class DataCategoryInput:
    key: str
    description: str
    purposes: list[str]
    recipients: list[str] = strawberry.field(default_factory=list)
    retention: str


@strawberry.input
class NoticePurposeInput:
    key: str
    material_change: bool = strawberry.field(
        default=False,
        description="True when this version changes the purpose so that consent must be renewed.",
    )


@strawberry.input
class NoticeTranslationInput:
    language: str
    summary: str


@strawberry.input(description="The next version of the privacy notice; published versions never change.")
class PublishPrivacyNoticeInput:
    summary: str
    data_categories: list[DataCategoryInput]
    purposes: list[NoticePurposeInput]
    translations: list[NoticeTranslationInput] = strawberry.field(default_factory=list)
    policy_url: str | None = None

    def to_domain(self) -> notices.NoticeDraft:
        return notices.NoticeDraft(
            summary=self.summary,
            data_categories=tuple(
                notices.DataCategory(
                    c.key, c.description, tuple(c.purposes), tuple(c.recipients), c.retention
                )
                for c in self.data_categories
            ),
            # Title and description are taken from the purpose as it stands when published.
            purposes=tuple(notices.NoticePurpose(p.key, "", "", p.material_change) for p in self.purposes),
            translations=tuple(notices.Translation(t.language, t.summary) for t in self.translations),
            policy_url=self.policy_url,
        )


@strawberry.type
class UpsertPurposeSuccess:
    purpose: Purpose


@strawberry.type
class PublishPrivacyNoticeSuccess:
    notice: PrivacyNotice


UpsertPurposeResult = Annotated[
    UpsertPurposeSuccess | ValidationError | PermissionDeniedError | ConflictError,
    strawberry.union("UpsertPurposeResult"),
]
PublishPrivacyNoticeResult = Annotated[
    PublishPrivacyNoticeSuccess | ValidationError | PermissionDeniedError | ConflictError,
    strawberry.union("PublishPrivacyNoticeResult"),
]


@strawberry.type
class CatalogueQuery:
    @strawberry.field(description="The current privacy notice, or the given version. Public.")
    async def privacy_notice(self, info: Info, version: int | None = None) -> PrivacyNotice | None:
        notice = await info.context.services.catalogue.notice(version)
        return PrivacyNotice.from_domain(notice) if notice else None

    @strawberry.field(description="Every purpose, by key. Public.")
    async def purposes(self, info: Info) -> list[Purpose]:
        return [Purpose.from_domain(p) for p in await info.context.services.catalogue.purposes()]


@strawberry.type
class CatalogueMutation:
    @strawberry.mutation(description="Create or change a purpose (admin).")
    async def upsert_purpose(self, info: Info, input: UpsertPurposeInput) -> UpsertPurposeResult:
        try:
            saved = await info.context.services.catalogue.upsert_purpose(
                info.context.principal, input.to_domain(), input.expected_version
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return UpsertPurposeSuccess(purpose=Purpose.from_domain(saved))

    @strawberry.mutation(description="Publish the next privacy notice version (admin).")
    async def publish_privacy_notice(
        self, info: Info, input: PublishPrivacyNoticeInput
    ) -> PublishPrivacyNoticeResult:
        try:
            notice = await info.context.services.catalogue.publish_notice(
                info.context.principal, input.to_domain()
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return PublishPrivacyNoticeSuccess(notice=PrivacyNotice.from_domain(notice))


@strawberry.type
class CatalogueSubscription:
    @strawberry.subscription(description="Each newly published privacy notice. Public.")
    async def privacy_notice_published(self, info: Info) -> AsyncGenerator[PrivacyNotice, None]:
        async for notice in info.context.services.catalogue.published_notices():
            yield PrivacyNotice.from_domain(notice)
