"""Consent receipts: the Kantara Consent Receipt v1.1 document, with ISO/IEC TS 27560 record notions.

`build_receipt` turns plain inputs into the receipt's claims (a JSON object); the service signs it as a
compact JWS. Kantara v1.1 members keep their names and types (`consentTimestamp` is a NumericDate,
`purposeCategory`/`piiCategory` are lists); the ISO/IEC TS 27560 notions are extra members: `notice`
(which notice version was shown, where), `event` (what happened: GIVEN, WITHDRAWN, RECONFIRMED, with its
time and the ledger events it records) and `state` per purpose (GRANTED or WITHDRAWN after the event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from dsr_gateway.domain.purposes import ConsentMechanism, LegalBasis, PurposeCategory

KANTARA_VERSION = "KI-CR-v1.1.0"
RECEIPT_TYPE = "dsr-gateway/consent-receipt/v1"

# Kantara v1.1 purpose categories for ours (the receipt also carries our own category, unmapped).
KANTARA_PURPOSE_CATEGORY: Mapping[PurposeCategory, str] = {
    PurposeCategory.ESSENTIAL: "1 - Core Function",
    PurposeCategory.PRODUCT_UPDATES: "4 - Contact Requested",
    PurposeCategory.PROFILING: "5 - Personalize Experience",
    PurposeCategory.MARKETING: "6 - Marketing",
    PurposeCategory.THIRD_PARTY_SHARING: "7 - Marketing Third Parties",
    PurposeCategory.ANALYTICS: "1 - Core Function",
}


class ConsentEventKind(StrEnum):
    GIVEN = "GIVEN"
    WITHDRAWN = "WITHDRAWN"
    RECONFIRMED = "RECONFIRMED"


class PurposeState(StrEnum):
    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"


@dataclass(frozen=True, slots=True)
class Controller:
    """The PII controller, from settings (DSR_CONTROLLER_*)."""

    name: str
    contact: str
    email: str
    address: Mapping[str, str] = field(default_factory=dict)  # e.g. {"streetAddress", "addressCountry"}
    phone: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptPurpose:
    key: str
    title: str
    category: PurposeCategory
    legal_basis: LegalBasis
    mechanism: ConsentMechanism
    state: PurposeState
    pii_categories: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    termination: str = "Until withdrawn"
    primary: bool = False
    topics: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiptInput:
    receipt_id: str  # a UUID4, made by the caller so it can be stored before signing
    subject_external_id: str
    timestamp: datetime
    event: ConsentEventKind
    collection_method: str  # e.g. "web form: preference centre"
    jurisdiction: str  # e.g. "GDPR" or "EU"
    notice_version: int | None
    policy_url: str | None
    purposes: tuple[ReceiptPurpose, ...]
    service: str = "Customer permissions"
    language: str = "en"
    sensitive: bool = False
    spi_categories: tuple[str, ...] = ()
    # Where the ledger holds this event: chain key and the consent event ids (and optionally its hash).
    ledger_chain: str | None = None
    ledger_event_ids: tuple[str, ...] = ()
    ledger_hash: str | None = None


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    receipt_id: str
    subject_id: int
    created_at: datetime
    jws: str


def _consent_type(mechanism: ConsentMechanism) -> str:
    return "EXPLICIT" if mechanism is ConsentMechanism.OPT_IN else "IMPLICIT"


def _purpose(p: ReceiptPurpose) -> dict[str, object]:
    document: dict[str, object] = {
        "purpose": p.title,
        "purposeCategory": [KANTARA_PURPOSE_CATEGORY[p.category]],
        "consentType": _consent_type(p.mechanism),
        "piiCategory": list(p.pii_categories),
        "primaryPurpose": p.primary,
        "termination": p.termination,
        "thirdPartyDisclosure": bool(p.recipients),
        # ISO/IEC TS 27560 and our own terms, as extra members.
        "purposeId": p.key,
        "gatewayCategory": p.category.value,
        "legalBasis": p.legal_basis.value,
        "state": p.state.value,
        "topics": list(p.topics),
        "channels": list(p.channels),
    }
    if p.recipients:
        document["thirdPartyName"] = ", ".join(p.recipients)
    return document


def build_receipt(
    data: ReceiptInput, controller: Controller, public_key: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The receipt's claims: Kantara CR v1.1 members, then the ISO/IEC TS 27560 notions."""
    if data.timestamp.tzinfo is None:
        raise ValueError("the consent timestamp must be an aware datetime")
    when = data.timestamp.astimezone(UTC)
    piicontroller: dict[str, object] = {
        "piiController": controller.name,
        "contact": controller.contact,
        "address": dict(controller.address),
        "email": controller.email,
        "phone": controller.phone or "",
    }
    if controller.url:
        piicontroller["piiControllerUrl"] = controller.url
    receipt: dict[str, object] = {
        "version": KANTARA_VERSION,
        "jurisdiction": data.jurisdiction,
        "consentTimestamp": int(when.timestamp()),
        "collectionMethod": data.collection_method,
        "consentReceiptID": data.receipt_id,
        "language": data.language,
        "piiPrincipalId": data.subject_external_id,
        "piiControllers": [piicontroller],
        "policyUrl": data.policy_url or "",
        "services": [{"service": data.service, "purposes": [_purpose(p) for p in data.purposes]}],
        "sensitive": data.sensitive,
        "spiCat": list(data.spi_categories),
        # ISO/IEC TS 27560 record notions.
        "notice": {"version": data.notice_version, "url": data.policy_url},
        "event": {
            "type": data.event.value,
            "time": when.isoformat().replace("+00:00", "Z"),
            "ledger": {
                "chain": data.ledger_chain,
                "eventIds": list(data.ledger_event_ids),
                "hash": data.ledger_hash,
            },
        },
        "state": {p.key: p.state.value for p in data.purposes},
        "typ": RECEIPT_TYPE,
        "iat": int(when.timestamp()),
    }
    if public_key is not None:
        receipt["publicKey"] = dict(public_key)
    return receipt


REQUIRED_MEMBERS = (
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
)


def missing_members(claims: Mapping[str, object]) -> list[str]:
    """The Kantara members a receipt must have and this one lacks (empty when complete)."""
    return [name for name in REQUIRED_MEMBERS if name not in claims]
