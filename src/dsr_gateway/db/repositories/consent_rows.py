"""Consent rows <-> domain objects, shared by the ledger repository and the Core read model."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

from dsr_gateway.db.repositories.catalogue import purpose_from_row
from dsr_gateway.db.tables.catalogue import PurposeRow
from dsr_gateway.domain.consent import (
    Actor,
    ActorKind,
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    ConsentRecord,
    ConsentStatus,
    NewConsentEvent,
    Origin,
    Scope,
)
from dsr_gateway.domain.purposes import Purpose

PURPOSE_FIELDS = [
    c.name
    for c in PurposeRow.__table__.c  # type: ignore[attr-defined]
    if c.name not in ("id", "created_at", "updated_at")
]


def purpose_from_mapping(row: Mapping[str, Any]) -> Purpose:
    """A purpose from a Core row mapping of the purpose table's columns (no ORM object is built)."""
    return purpose_from_row(cast(PurposeRow, SimpleNamespace(**{k: row[k] for k in PURPOSE_FIELDS})))


PURPOSE_CACHE_SIZE = 1024


def cached_purpose(cache: dict[tuple[Any, ...], Purpose] | None, row: Mapping[str, Any]) -> Purpose:
    """`purpose_from_mapping`, once per (key, version, last material change) in `cache` (the engine's:
    process_caches.py says why that identifies a purpose); None: no caching."""
    if cache is None:
        return purpose_from_mapping(row)
    key = (row["key"], row["version"], row["last_material_version"])
    purpose = cache.get(key)
    if purpose is None:
        if len(cache) >= PURPOSE_CACHE_SIZE:
            cache.clear()
        purpose = cache[key] = purpose_from_mapping(row)
    return purpose


def event_values(subject_id: int, event: NewConsentEvent) -> dict[str, Any]:
    return {
        "subject_id": subject_id,
        "purpose_key": event.scope.purpose,
        "topic": event.scope.topic,
        "channel": event.scope.channel,
        "action": event.action.value,
        "method": event.method.value,
        "notice_version": event.notice_version,
        "origin_app_id": event.origin.app_id,
        "origin_url": event.origin.url,
        "origin_user_agent": event.origin.user_agent,
        "origin_ip": event.origin.ip,
        "actor_kind": event.actor.kind.value,
        "actor_id": event.actor.id,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "idempotency_key": event.idempotency_key,
    }


def recorded(event_id: int, subject_id: int, event: NewConsentEvent) -> ConsentEvent:
    return ConsentEvent(
        id=event_id,
        subject_id=subject_id,
        scope=event.scope,
        action=event.action,
        method=event.method,
        notice_version=event.notice_version,
        origin=event.origin,
        actor=event.actor,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        idempotency_key=event.idempotency_key,
    )


def event_from_row(row: Mapping[Any, Any]) -> ConsentEvent:
    return ConsentEvent(
        id=row["id"],
        subject_id=row["subject_id"],
        scope=Scope(row["purpose_key"], row["topic"], row["channel"]),
        action=ConsentAction(row["action"]),
        method=ConsentMethod(row["method"]),
        notice_version=row["notice_version"],
        origin=Origin(row["origin_app_id"], row["origin_url"], row["origin_user_agent"], row["origin_ip"]),
        actor=Actor(ActorKind(row["actor_kind"]), row["actor_id"]),
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        idempotency_key=row["idempotency_key"],
    )


def state_values(subject_id: int, record: ConsentRecord) -> dict[str, Any]:
    return {
        "subject_id": subject_id,
        "purpose_key": record.scope.purpose,
        "topic": record.scope.topic,
        "channel": record.scope.channel,
        "status": record.status.value,
        "method": record.method.value,
        "notice_version": record.notice_version,
        "given_at": record.given_at,
        "updated_at": record.updated_at,
        "last_event_id": record.last_event_id,
    }


def record_from_row(row: Mapping[Any, Any]) -> ConsentRecord:
    return ConsentRecord(
        scope=Scope(row["purpose_key"], row["topic"], row["channel"]),
        status=ConsentStatus(row["status"]),
        method=ConsentMethod(row["method"]),
        notice_version=row["notice_version"],
        given_at=row["given_at"],
        updated_at=row["updated_at"],
        last_event_id=row["last_event_id"],
    )
