"""Root fields of the consent ledger: setConsents, withdrawConsent, consentEvents, consentCheck."""

from __future__ import annotations

from typing import Annotated, Self

import strawberry

from dsr_gateway.domain.consent import ANY, Origin
from dsr_gateway.domain.consent_rules import ConsentChoice, make_origin
from dsr_gateway.domain.errors import DomainError, ValidationFailed
from dsr_gateway.domain.principal import PrincipalKind
from dsr_gateway.graphql.context import Info
from dsr_gateway.graphql.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    error_from_domain,
    query_error,
)
from dsr_gateway.graphql.observability import note_access, note_checks
from dsr_gateway.graphql.plain_inputs import plain_input
from dsr_gateway.graphql.types.catalogue import Channel
from dsr_gateway.graphql.types.consent import (
    Consent,
    ConsentDecision,
    ConsentEvent,
    ConsentEventConnection,
    ConsentEventEdge,
    ConsentMethod,
)
from dsr_gateway.graphql.types.pagination import PageInfo
from dsr_gateway.services.consent_writes import ConsentChange, SetConsentsRequest, WithdrawRequest


@plain_input
@strawberry.input(description="One separate choice about a purpose, or one topic/channel of it.")
class ConsentChoiceInput:
    purpose: str
    granted: bool = strawberry.field(description="True gives consent (or lifts an objection); false refuses.")
    topic: str | None = None
    channel: Channel | None = None
    pre_selected: bool = strawberry.field(
        default=False, description="True if the box was ticked before the subject acted: refused for grants."
    )


@plain_input
@strawberry.input(description="Where the choice was made. The IP address is stored truncated to /24 or /48.")
class ConsentOriginInput:
    app_id: str | None = None
    url: str | None = None
    user_agent: str | None = None
    ip: str | None = None


@plain_input
@strawberry.input
class SetConsentsInput:
    choices: list[ConsentChoiceInput]
    subject_id: str | None = strawberry.field(default=None, description="External id; default: yourself.")
    method: ConsentMethod | None = strawberry.field(
        default=None,
        description="How the subject acted (default BUTTON; API for API clients; AGENT for staff).",
    )
    notice_version: int | None = strawberry.field(
        default=None, description="The privacy notice version shown; required to grant an opt-in purpose."
    )
    origin: ConsentOriginInput | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="A retry with the same key records nothing and returns the first result."
    )


@plain_input
@strawberry.input(
    description="Withdraw one topic or channel of a purpose, a whole purpose, or (no purpose) all."
)
class WithdrawConsentInput:
    subject_id: str | None = None
    purpose: str | None = None
    topic: str | None = None
    channel: Channel | None = None
    method: ConsentMethod | None = None
    origin: ConsentOriginInput | None = None
    idempotency_key: str | None = None


def _change_events(root: SetConsentsSuccess) -> list[ConsentEvent]:
    return [ConsentEvent.from_domain(e, root.change.external_id) for e in root.change.events]


def _change_consents(root: SetConsentsSuccess) -> list[Consent]:
    return [Consent.from_domain(v) for v in root.change.consents]


@strawberry.type
class SetConsentsSuccess:
    subject_id: str
    # Events and preferences become GraphQL objects only when asked for (most writers ask for neither).
    events: list[ConsentEvent] = strawberry.field(
        resolver=_change_events, description="The events recorded by this call."
    )
    consents: list[Consent] = strawberry.field(
        resolver=_change_consents, description="The subject's preferences afterwards."
    )
    replayed: bool = strawberry.field(description="True when the idempotency key had been used before.")
    change: strawberry.Private[ConsentChange]

    @classmethod
    def from_change(cls, change: ConsentChange) -> Self:
        return cls(subject_id=change.external_id, replayed=change.replayed, change=change)


@strawberry.type
class WithdrawConsentSuccess(SetConsentsSuccess):
    pass


# ConflictError: the database gave the write up for a concurrent one three times running (rare), or the
# subject was held longer than DSR_CONSENT_LOCK_TIMEOUT_SECONDS by a longer change (an import); nothing
# recorded, the message says to send it again.
SetConsentsResult = Annotated[
    SetConsentsSuccess | ValidationError | NotFoundError | PermissionDeniedError | ConflictError,
    strawberry.union("SetConsentsResult"),
]
WithdrawConsentResult = Annotated[
    WithdrawConsentSuccess | ValidationError | NotFoundError | PermissionDeniedError | ConflictError,
    strawberry.union("WithdrawConsentResult"),
]


def _subject_id(info: Info, given: str | None) -> str:
    principal = info.context.principal
    if given is not None:
        return given
    if principal.kind is PrincipalKind.SUBJECT and principal.id is not None:
        return principal.id
    raise ValidationFailed.single("subjectId", "give the subject's external id")


def _origin(info: Info, given: ConsentOriginInput | None, external_id: str) -> Origin:
    """The origin given; a subject acting for itself from its own device fills the rest from the request."""
    given = given or ConsentOriginInput()
    user_agent, ip = given.user_agent, given.ip
    if info.context.principal.is_subject(external_id):
        request = info.context.request
        user_agent = user_agent or request.headers.get("user-agent")
        ip = ip or (request.client.host if request.client else None)
    return make_origin(given.app_id, given.url, user_agent, ip)


@strawberry.type
class ConsentQuery:
    @strawberry.field(
        description="May we process these subjects' data for the purpose? One decision per id, in order "
        "(staff, API clients with consent:read). Up to 10,000 ids; one database round trip."
    )
    async def consent_check(
        self,
        info: Info,
        purpose: str,
        subject_ids: list[str],
        channel: Channel | None = None,
        topic: str | None = None,
    ) -> list[ConsentDecision]:
        try:
            decisions = await info.context.services.consent.check(
                info.context.principal, purpose, subject_ids, topic, channel.value if channel else None
            )
        except DomainError as exc:
            raise query_error(exc) from exc
        note_checks(info, f"consentCheck:{purpose}", subject_ids)
        return [
            ConsentDecision(subject_id=s, allowed=d.allowed, reason=d.reason)
            for s, d in zip(subject_ids, decisions, strict=True)
        ]

    @strawberry.field(
        description='The consent ledger, newest first (page with `after`). With `since` ("" for the '
        "beginning, then each endCursor) it is a changes feed in commit order that never skips or repeats "
        "an event. Staff and consent:read clients read all; a subject reads its own."
    )
    async def consent_events(
        self,
        info: Info,
        subject_id: str | None = None,
        since: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> ConsentEventConnection:
        try:
            page = await info.context.services.consent.events(
                info.context.principal, subject_id, since, first, after
            )
        except DomainError as exc:
            raise query_error(exc) from exc
        for external_id in dict.fromkeys(e.external_id for _, e in page.entries):
            note_access(info, "consentEvents", external_id)
        return ConsentEventConnection(
            edges=[ConsentEventEdge(cursor=c, node=ConsentEvent.from_entry(e)) for c, e in page.entries],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Record several separate choices for one subject, all or none.")
    async def set_consents(self, info: Info, input: SetConsentsInput) -> SetConsentsResult:
        try:
            external_id = _subject_id(info, input.subject_id)
            request = SetConsentsRequest(
                external_id=external_id,
                choices=[
                    ConsentChoice(
                        purpose=c.purpose,
                        granted=c.granted,
                        topic=c.topic or ANY,
                        channel=c.channel.value if c.channel else ANY,
                        pre_selected=c.pre_selected,
                    )
                    for c in input.choices
                ],
                method=input.method,
                notice_version=input.notice_version,
                origin=_origin(info, input.origin, external_id),
                idempotency_key=input.idempotency_key,
            )
            change = await info.context.services.consent.set_consents(info.context.principal, request)
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return SetConsentsSuccess.from_change(change)

    @strawberry.mutation(description="Withdraw one topic/channel, one purpose, or (without purpose) all.")
    async def withdraw_consent(self, info: Info, input: WithdrawConsentInput) -> WithdrawConsentResult:
        try:
            external_id = _subject_id(info, input.subject_id)
            request = WithdrawRequest(
                external_id=external_id,
                purpose=input.purpose,
                topic=input.topic or ANY,
                channel=input.channel.value if input.channel else ANY,
                method=input.method,
                origin=_origin(info, input.origin, external_id),
                idempotency_key=input.idempotency_key,
            )
            change = await info.context.services.consent.withdraw(info.context.principal, request)
        except DomainError as exc:
            return error_from_domain(exc)  # type: ignore[return-value]
        return WithdrawConsentSuccess.from_change(change)
