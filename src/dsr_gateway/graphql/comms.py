"""Root fields of reviews and communication: consentsDueForReview, unsubscribeLink,
startReconfirmationCampaign, sendBreachNotice, setContactDetails."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from dsr_gateway.domain.errors import DomainError, ValidationFailed
from dsr_gateway.domain.principal import PrincipalKind
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import (
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_from_domain,
    query_error,
)
from dsr_gateway.graphql.types.catalogue import Channel
from dsr_gateway.graphql.types.comms import (
    BreachNoticeSent,
    CampaignStarted,
    ContactDetailsSaved,
    DueConsent,
    DueConsentConnection,
    DueConsentEdge,
    SendBreachNoticeInput,
    SetContactDetailsInput,
    UnsubscribeLink,
)
from dsr_gateway.graphql.types.pagination import PageInfo
from dsr_gateway.services.comms.breach import BreachInput

StartReconfirmationCampaignResult = Annotated[
    CampaignStarted | ValidationError | NotFoundError | PermissionDeniedError,
    strawberry.union("StartReconfirmationCampaignResult"),
]
SendBreachNoticeResult = Annotated[
    BreachNoticeSent | ValidationError | PermissionDeniedError,
    strawberry.union("SendBreachNoticeResult"),
]
SetContactDetailsResult = Annotated[
    ContactDetailsSaved | ValidationError | PermissionDeniedError,
    strawberry.union("SetContactDetailsResult"),
]


@strawberry.type
class CommsQuery:
    @strawberry.field(
        description="Granted consents of a purpose that fall due for reconfirmation before `dueBefore`, "
        "soonest first (staff)."
    )
    async def consents_due_for_review(
        self,
        info: Info,
        purpose: str,
        due_before: datetime,
        first: int | None = None,
        after: str | None = None,
    ) -> DueConsentConnection:
        try:
            page = await info.context.services.reviews.due_for_review(
                info.context.principal, purpose, due_before, first, after
            )
        except DomainError as exc:
            raise query_error(exc) from exc
        return DueConsentConnection(
            edges=[DueConsentEdge(cursor=c, node=DueConsent.from_domain(d)) for c, d in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        description="A subject's one-click unsubscribe link and the List-Unsubscribe headers for an email "
        "(staff and API clients with consent:read)."
    )
    async def unsubscribe_link(
        self,
        info: Info,
        subject_id: str,
        purpose: str,
        topic: str | None = None,
        channel: Channel | None = None,
    ) -> UnsubscribeLink:
        try:
            link = await info.context.services.links.unsubscribe_link(
                info.context.principal, subject_id, purpose, topic, channel.value if channel else None
            )
        except DomainError as exc:
            raise query_error(exc) from exc
        return UnsubscribeLink(
            url=link.url,
            list_unsubscribe=link.list_unsubscribe,
            list_unsubscribe_post=link.list_unsubscribe_post,
        )


@strawberry.type
class CommsMutation:
    @strawberry.mutation(
        description="Queue a reconfirmation reminder to each subject whose consent to the purpose falls due "
        "within the days; subjects reminded recently are skipped (admin)."
    )
    async def start_reconfirmation_campaign(
        self, info: Info, purpose: str, due_within_days: int
    ) -> StartReconfirmationCampaignResult:
        try:
            result = await info.context.services.reviews.start_campaign(
                info.context.principal, purpose, due_within_days
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return CampaignStarted(
            purpose=result.purpose,
            due_subjects=result.due_subjects,
            queued=result.queued,
            no_address=result.no_address,
            skipped_recently_sent=result.skipped_recently_sent,
        )

    @strawberry.mutation(
        description="Notify the subjects whose data sits in the given systems or data categories of a "
        "personal data breach; recorded per subject (admin)."
    )
    async def send_breach_notice(self, info: Info, input: SendBreachNoticeInput) -> SendBreachNoticeResult:
        command = BreachInput(
            systems=input.systems,
            data_categories=input.data_categories,
            summary=input.summary,
            likely_consequences=input.likely_consequences,
            measures_taken=input.measures_taken,
            contact=input.contact,
            occurred_on=input.occurred_on,
            steps_to_take=input.steps_to_take,
        )
        try:
            result = await info.context.services.breach.send(info.context.principal, command)
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return BreachNoticeSent(
            breach_id=strawberry.ID(str(result.breach_id)),
            systems=result.systems,
            recipients=result.recipients,
            without_address=result.without_address,
        )

    @strawberry.mutation(
        description="Where consent messages to a subject go and in which language (the subject, staff, or "
        "API clients with consent:write)."
    )
    async def set_contact_details(self, info: Info, input: SetContactDetailsInput) -> SetContactDetailsResult:
        principal = info.context.principal
        subject_id = input.subject_id
        if subject_id is None and principal.kind is PrincipalKind.SUBJECT and principal.id:
            subject_id = principal.id
        try:
            if subject_id is None:
                raise ValidationFailed.single("subjectId", "name the subject (its external id)")
            saved = await info.context.services.contacts.set_details(
                principal, subject_id, input.email, input.language
            )
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return ContactDetailsSaved(
            subject_id=saved.external_id, email=saved.email_hint, language=saved.language
        )
