"""Purposes and privacy notices as clients see them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from dsr_gateway.domain import notices, purposes

# Domain enums are served as they are: their names and values are the public contract.
LegalBasis = purposes.LegalBasis
ConsentMechanism = purposes.ConsentMechanism
PurposeCategory = purposes.PurposeCategory
Channel = purposes.Channel


@strawberry.type
class Topic:
    key: str
    title: str
    description: str


@strawberry.type(description="A unit of consent: what the data is used for, on what basis, and by whom.")
class Purpose:
    key: str
    title: str
    description: str
    legal_basis: LegalBasis
    mechanism: ConsentMechanism
    category: PurposeCategory
    channels: list[Channel]
    topics: list[Topic]
    recipients: list[str]
    reconfirm_after_days: int | None = strawberry.field(
        description="Days after which a consent must be reconfirmed; null when it never lapses."
    )
    gpc_opt_out: bool = strawberry.field(
        description="Sale, sharing or targeted advertising: a Global Privacy Control signal opts out."
    )
    last_material_version: int | None = strawberry.field(
        description="The notice version that last changed this purpose materially; consents before it lapse."
    )
    version: int

    @classmethod
    def from_domain(cls, purpose: purposes.Purpose) -> Purpose:
        return cls(
            key=purpose.key,
            title=purpose.title,
            description=purpose.description,
            legal_basis=purpose.legal_basis,
            mechanism=purpose.mechanism,
            category=purpose.category,
            channels=list(purpose.channels),
            topics=[Topic(key=t.key, title=t.title, description=t.description) for t in purpose.topics],
            recipients=list(purpose.recipients),
            reconfirm_after_days=purpose.reconfirm_after_days,
            gpc_opt_out=purpose.gpc_opt_out,
            last_material_version=purpose.last_material_version,
            version=purpose.version,
        )


@strawberry.type(description="A category of personal data: its use, recipients and retention.")
class DataCategory:
    key: str
    description: str
    purposes: list[str]
    recipients: list[str]
    retention: str


@strawberry.type
class NoticePurpose:
    key: str
    title: str
    description: str
    material_change: bool = strawberry.field(
        description="Whether this version changed the purpose materially (older consents need renewing)."
    )


@strawberry.type
class NoticeTranslation:
    language: str
    summary: str


@strawberry.type(description="A published, immutable version of the privacy notice.")
class PrivacyNotice:
    version: int
    summary: str
    policy_url: str | None
    data_categories: list[DataCategory]
    purposes: list[NoticePurpose]
    translations: list[NoticeTranslation]
    published_at: datetime

    @classmethod
    def from_domain(cls, notice: notices.PrivacyNotice) -> PrivacyNotice:
        return cls(
            version=notice.version,
            summary=notice.summary,
            policy_url=notice.policy_url,
            data_categories=[
                DataCategory(
                    key=c.key,
                    description=c.description,
                    purposes=list(c.purposes),
                    recipients=list(c.recipients),
                    retention=c.retention,
                )
                for c in notice.data_categories
            ],
            purposes=[
                NoticePurpose(
                    key=p.key, title=p.title, description=p.description, material_change=p.material_change
                )
                for p in notice.purposes
            ],
            translations=[
                NoticeTranslation(language=t.language, summary=t.summary) for t in notice.translations
            ],
            published_at=notice.published_at,
        )
