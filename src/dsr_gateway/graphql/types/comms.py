"""Types of the communication area: due consents, campaign results, breach notices, links, conflicts."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.types.catalogue import Channel
from dsr_gateway.graphql.types.pagination import PageInfo
from dsr_gateway.services.comms.ports import DueConsent as DueConsentRow
from dsr_gateway.services.consent_lifecycle import GpcConflict as GpcConflictRow


@strawberry.type(description="A granted consent that falls due for reconfirmation.")
class DueConsent:
    subject_id: str
    purpose: str
    topic: str | None
    channel: Channel | None
    given_at: datetime = strawberry.field(description="When it was last granted or reconfirmed.")
    due_at: datetime = strawberry.field(description="given_at + the purpose's reconfirmAfterDays.")

    @classmethod
    def from_domain(cls, row: DueConsentRow) -> DueConsent:
        return cls(
            subject_id=row.external_id,
            purpose=row.purpose,
            topic=row.topic or None,
            channel=Channel(row.channel) if row.channel else None,
            given_at=row.given_at,
            due_at=row.due_at,
        )


@strawberry.type
class DueConsentEdge:
    cursor: str
    node: DueConsent


@strawberry.type
class DueConsentConnection:
    edges: list[DueConsentEdge]
    page_info: PageInfo


@strawberry.type(description="What a reconfirmation campaign queued.")
class CampaignStarted:
    purpose: str
    due_subjects: int = strawberry.field(description="Subjects with a consent due in the window.")
    queued: int = strawberry.field(description="Reminders queued (including those without an address).")
    no_address: int = strawberry.field(description="Queued as NO_ADDRESS: we know no address to send to.")
    skipped_recently_sent: int = strawberry.field(
        description="Subjects reminded about this purpose within DSR_CAMPAIGN_MIN_INTERVAL_DAYS."
    )


@strawberry.type(description="A breach notice sent (queued) to the affected subjects; recorded per subject.")
class BreachNoticeSent:
    breach_id: strawberry.ID
    systems: list[str] = strawberry.field(description="The systems taken as affected (named or by category).")
    recipients: int
    without_address: int


@strawberry.input
class SendBreachNoticeInput:
    systems: list[str] = strawberry.field(default_factory=list, description="Names in the systems file.")
    data_categories: list[str] = strawberry.field(
        default_factory=list, description="Affected categories; systems listing one of them are included."
    )
    summary: str = strawberry.field(description="What happened, in plain language.")
    likely_consequences: str
    measures_taken: str
    contact: str = strawberry.field(description="Who the subject can contact (e.g. the DPO's address).")
    occurred_on: date | None = None
    steps_to_take: list[str] = strawberry.field(
        default_factory=list, description="What the subject can do to protect themselves."
    )


@strawberry.input
class SetContactDetailsInput:
    subject_id: str | None = strawberry.field(default=None, description="External id; default: yourself.")
    email: str | None = strawberry.field(default=None, description="Where consent messages go; null clears.")
    language: str | None = strawberry.field(default=None, description="A language tag such as de or de-AT.")


@strawberry.type
class ContactDetailsSaved:
    subject_id: str
    email: str | None = strawberry.field(description="Masked, e.g. z***@e***.com.")
    language: str | None


@strawberry.type(description="A link to put in an email, and the RFC 8058 header values that go with it.")
class UnsubscribeLink:
    url: str
    list_unsubscribe: str = strawberry.field(description="The `List-Unsubscribe` header value.")
    list_unsubscribe_post: str = strawberry.field(description="The `List-Unsubscribe-Post` header value.")


@strawberry.type(
    description="A Global Privacy Control signal that overrode an explicit opt-in. The signal is honoured "
    "as an opt-out (CCPA regulations 7025(c)(3)); opt in again to allow this purpose."
)
class GpcConflict:
    purpose: str
    granted_at: datetime | None = strawberry.field(description="When you had opted in.")
    recorded_at: datetime = strawberry.field(description="When the GPC signal was recorded.")
    note: str

    @classmethod
    def from_domain(cls, row: GpcConflictRow) -> GpcConflict:
        return cls(
            purpose=row.purpose,
            granted_at=row.granted_at,
            recorded_at=row.recorded_at,
            note="Your browser sent a Global Privacy Control signal, so we treat it as an opt-out of this "
            "purpose although you had opted in. Opt in again if you want to allow it.",
        )


async def subject_gpc_conflicts(root: strawberry.Parent[object], info: Info) -> list[GpcConflict]:
    service = info.context.services.consent_lifecycle

    async def load(ids: list[str]) -> list[list[GpcConflict]]:
        rows = await service.gpc_conflicts(ids)
        return [[GpcConflict.from_domain(r) for r in subject] for subject in rows]

    return await info.context.loader("gpc_conflicts", load).load(root.external_id)  # type: ignore[attr-defined]
