"""Webhooks for other systems: subscriptions, deliveries, and their rules (the backoff: domain/retry.py)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from dsr_gateway.domain.errors import FieldProblem, ValidationFailed

URL_MAX = 2000
SECRET_MIN = 24
SECRET_MAX = 256
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal")


def non_public_address(host: str) -> str | None:
    """Why `host` (a name or a literal address) is not on the public internet, or None.

    Webhook URLs are chosen by administrators, but a gateway that posts personal data to
    169.254.169.254 or to a database port inside the network is a tool for whoever holds an admin
    account (server-side request forgery). Names are checked again at delivery, once resolved.
    """
    name = host.strip("[]").lower().rstrip(".")
    if name.endswith(LOCAL_NAMES) or name in LOCAL_NAMES:
        return f"{host} is a local name"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None  # a name: its addresses are checked when a delivery resolves it
    if not address.is_global:
        return f"{host} is not a public address"
    return None


class WebhookEventType(StrEnum):
    """What a subscription can ask for; the value is sent in the `X-DSR-Event` header."""

    CONSENT_CHANGED = "consent.changed"
    REQUEST_STATUS_CHANGED = "request.status_changed"
    SLA_ALERT = "sla.alert"


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    id: int
    url: str
    events: tuple[WebhookEventType, ...]
    active: bool
    description: str
    created_by: str
    created_at: datetime

    def wants(self, event_type: WebhookEventType) -> bool:
        return self.active and event_type in self.events


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: int
    subscription_id: int
    event_id: str
    event_type: WebhookEventType
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    redelivery_of: int | None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: tuple[WebhookDelivery, ...]
    has_next_page: bool


def validate_subscription(
    url: str,
    events: Sequence[WebhookEventType],
    secret: str | None,
    *,
    allow_plain_http: bool,
    allow_private_addresses: bool = True,
) -> None:
    """Raise ValidationFailed listing every problem with a new subscription."""
    problems: list[FieldProblem] = []
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValidationFailed.single("url", "not a valid URL (check the brackets and the port)") from None
    if len(url) > URL_MAX:
        problems.append(FieldProblem("url", f"must be at most {URL_MAX} characters"))
    elif parts.scheme not in ("https", "http") or not parts.hostname:
        problems.append(
            FieldProblem("url", "give an absolute https:// URL, e.g. https://crm.example/hooks/dsr")
        )
    elif parts.scheme == "http" and not (allow_plain_http or parts.hostname in LOOPBACK_HOSTS):
        problems.append(FieldProblem("url", "use https://: payloads carry personal data"))
    elif not allow_private_addresses and (reason := non_public_address(parts.hostname)):
        problems.append(FieldProblem("url", f"{reason}; webhooks go to public addresses only"))
    elif parts.username or parts.password:
        problems.append(
            FieldProblem("url", "must not contain a user name or password; the signature authenticates us")
        )
    if not events:
        problems.append(FieldProblem("events", "choose at least one event type"))
    elif len(set(events)) != len(events):
        problems.append(FieldProblem("events", "lists an event type twice"))
    if secret is not None and not SECRET_MIN <= len(secret) <= SECRET_MAX:
        problems.append(
            FieldProblem(
                "secret",
                f"must be {SECRET_MIN} to {SECRET_MAX} characters, or left out to have one generated",
            )
        )
    if problems:
        raise ValidationFailed(problems)


def envelope(delivery: WebhookDelivery) -> bytes:
    """The exact bytes POSTed (and signed): compact, key-sorted JSON, the same on every retry."""
    body = {
        "id": delivery.event_id,
        "type": delivery.event_type.value,
        "createdAt": delivery.created_at.isoformat().replace("+00:00", "Z"),
        "data": delivery.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
