"""Consent preferences, events and decisions as clients see them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, TypeAlias

import strawberry

from dsr_gateway.domain import consent
from dsr_gateway.graphql.types.catalogue import Channel
from dsr_gateway.graphql.types.pagination import PageInfo
from dsr_gateway.services.ports import LedgerEntry

# Domain enums are served as they are; their names and values are the public contract.
ConsentReason = consent.ConsentReason
ConsentAction = consent.ConsentAction
ConsentMethod = consent.ConsentMethod
ConsentActorKind: TypeAlias = Annotated[consent.ActorKind, strawberry.enum(name="ConsentActorKind")]


@strawberry.enum(description="What was last recorded for a scope; NO_CHOICE when nothing was.")
class ConsentState(StrEnum):
    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"
    OBJECTED = "OBJECTED"
    EXPIRED = "EXPIRED"
    GPC_OPT_OUT = "GPC_OPT_OUT"
    NO_CHOICE = "NO_CHOICE"


def _channel(value: str) -> Channel | None:
    return Channel(value) if value else None


@strawberry.type(description="One line of a subject's preferences, and what it means now.")
class Consent:
    purpose: str
    topic: str | None = strawberry.field(description="Null: the whole purpose.")
    channel: Channel | None = strawberry.field(description="Null: every channel of the purpose.")
    state: ConsentState
    allowed: bool = strawberry.field(description="Whether the business may process for this now.")
    reason: ConsentReason
    updated_at: datetime | None = strawberry.field(description="When the last choice was made.")
    given_at: datetime | None = strawberry.field(description="When consent was last granted or reconfirmed.")
    method: ConsentMethod | None = strawberry.field(description="How the last choice was made.")
    notice_version: int | None = strawberry.field(description="The privacy notice version agreed to.")

    @classmethod
    def from_domain(cls, view: consent.ConsentView) -> Consent:
        record = view.record
        return cls(
            purpose=view.scope.purpose,
            topic=view.scope.topic or None,
            channel=_channel(view.scope.channel),
            state=ConsentState(record.status.value) if record else ConsentState.NO_CHOICE,
            allowed=view.decision.allowed,
            reason=view.decision.reason,
            updated_at=record.updated_at if record else None,
            given_at=record.given_at if record else None,
            method=record.method if record else None,
            notice_version=record.notice_version if record else None,
        )


@strawberry.type(description="Where a choice came from; the IP address is truncated to /24 or /48.")
class ConsentOrigin:
    app_id: str | None
    url: str | None
    user_agent: str | None
    ip: str | None


@strawberry.type(description="Who recorded the event: the subject, an agent, an API client or the system.")
class ConsentActor:
    kind: ConsentActorKind
    id: str


@strawberry.type(description="One entry of the append-only consent ledger.")
class ConsentEvent:
    id: strawberry.ID
    subject_id: str = strawberry.field(description="The subject's external id.")
    purpose: str
    topic: str | None
    channel: Channel | None
    action: ConsentAction
    method: ConsentMethod
    notice_version: int | None
    origin: ConsentOrigin
    actor: ConsentActor
    occurred_at: datetime
    recorded_at: datetime

    @classmethod
    def from_domain(cls, event: consent.ConsentEvent, external_id: str) -> ConsentEvent:
        origin = event.origin
        return cls(
            id=strawberry.ID(str(event.id)),
            subject_id=external_id,
            purpose=event.scope.purpose,
            topic=event.scope.topic or None,
            channel=_channel(event.scope.channel),
            action=event.action,
            method=event.method,
            notice_version=event.notice_version,
            origin=ConsentOrigin(
                app_id=origin.app_id, url=origin.url, user_agent=origin.user_agent, ip=origin.ip
            ),
            actor=ConsentActor(kind=event.actor.kind, id=event.actor.id),
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
        )

    @classmethod
    def from_entry(cls, entry: LedgerEntry) -> ConsentEvent:
        return cls.from_domain(entry.event, entry.external_id)


@strawberry.type
class ConsentEventEdge:
    cursor: str
    node: ConsentEvent


@strawberry.type
class ConsentEventConnection:
    edges: list[ConsentEventEdge]
    page_info: PageInfo


@strawberry.type(description="May we process this subject's data for the purpose, and why.")
class ConsentDecision:
    subject_id: str
    allowed: bool
    reason: ConsentReason
