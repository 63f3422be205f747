"""Type-specific request details: valid shapes per type, and invalid ones with the exact field path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dsr_gateway.domain.errors import ValidationFailed
from dsr_gateway.domain.requests import (
    NOTE_MAX_LENGTH,
    AccessDetails,
    ConsentRevocationDetails,
    ErasureDetails,
    ObjectionDetails,
    PortabilityDetails,
    RectificationChange,
    RectificationDetails,
    RejectionReason,
    RequestStatus,
    RequestType,
    RestrictionDetails,
    details_from_json,
    validate_details,
    validate_note,
)

T = RequestType


def _change(**overrides: Any) -> dict[str, Any]:
    change: dict[str, Any] = {
        "field": "email",
        "currentValue": "old@example.com",
        "requestedValue": "new@example.com",
    }
    change.update(overrides)
    return change


VALID: list[tuple[RequestType, dict[str, Any] | None, object]] = [
    (T.ACCESS, {}, AccessDetails()),
    (T.ACCESS, None, AccessDetails()),
    (T.ACCESS, {"categories": ["contact", "orders"]}, AccessDetails(("contact", "orders"))),
    (T.PORTABILITY, {"categories": []}, PortabilityDetails()),
    (T.PORTABILITY, {"categories": ["orders"]}, PortabilityDetails(("orders",))),
    (
        T.RECTIFICATION,
        {"changes": [_change()]},
        RectificationDetails((RectificationChange("email", "old@example.com", "new@example.com"),)),
    ),
    (
        T.RECTIFICATION,
        {"changes": [_change(field=" last_name ", currentValue=None, requestedValue="Smith ")]},
        RectificationDetails((RectificationChange("last_name", None, "Smith"),)),
    ),
    (
        T.RECTIFICATION,
        {"changes": [_change(), _change(field="phone", currentValue="", requestedValue="+49 30 1234")]},
        RectificationDetails(
            (
                RectificationChange("email", "old@example.com", "new@example.com"),
                RectificationChange("phone", "", "+49 30 1234"),
            )
        ),
    ),
    (T.ERASURE, {"all": True}, ErasureDetails(erase_all=True)),
    (T.ERASURE, {"all": True, "categories": []}, ErasureDetails(erase_all=True)),
    (T.ERASURE, {"categories": ["marketing_profile"]}, ErasureDetails(False, ("marketing_profile",))),
    (T.ERASURE, {"all": False, "categories": ["a", "b"]}, ErasureDetails(False, ("a", "b"))),
    (T.RESTRICTION, {"purposes": ["profiling"]}, RestrictionDetails(("profiling",))),
    (
        T.OBJECTION,
        {"purposes": ["marketing_email", "analytics"]},
        ObjectionDetails(("marketing_email", "analytics")),
    ),
    (T.CONSENT_REVOCATION, {}, ConsentRevocationDetails()),
    (T.CONSENT_REVOCATION, {"purposes": []}, ConsentRevocationDetails()),
    (T.CONSENT_REVOCATION, {"purposes": ["marketing_sms"]}, ConsentRevocationDetails(("marketing_sms",))),
]


@pytest.mark.parametrize(("request_type", "raw", "expected"), VALID)
def test_valid_details(request_type: RequestType, raw: dict[str, Any] | None, expected: object) -> None:
    details = validate_details(request_type, raw)
    assert details == expected
    assert details.request_type is request_type


@pytest.mark.parametrize(("request_type", "raw", "expected"), VALID)
def test_json_round_trip(request_type: RequestType, raw: dict[str, Any] | None, expected: object) -> None:
    details = validate_details(request_type, raw)
    stored = json.loads(json.dumps(details.to_json()))
    assert details_from_json(request_type, stored) == details
    assert type(details).from_json(stored) == details


INVALID: list[tuple[RequestType, Any, str]] = [
    # access / portability: optional categories, well-formed when given
    (T.ACCESS, {"categories": "contact"}, "details.categories"),
    (T.ACCESS, {"categories": ["contact", ""]}, "details.categories.1"),
    (T.ACCESS, {"categories": ["contact", "contact"]}, "details.categories.1"),
    (T.ACCESS, {"categories": [7]}, "details.categories.0"),
    (T.ACCESS, {"categories": ["has space"]}, "details.categories.0"),
    (T.ACCESS, {"categories": ["c" * 65]}, "details.categories.0"),
    (T.ACCESS, {"categories": [f"c{i}" for i in range(51)]}, "details.categories"),
    (T.ACCESS, {"purposes": ["x"]}, "details.purposes"),
    (T.PORTABILITY, {"all": True}, "details.all"),
    (T.ACCESS, ["contact"], "details"),
    # rectification: a non-empty list of complete changes
    (T.RECTIFICATION, {}, "details.changes"),
    (T.RECTIFICATION, {"changes": []}, "details.changes"),
    (T.RECTIFICATION, {"changes": "email"}, "details.changes"),
    (T.RECTIFICATION, {"changes": ["email"]}, "details.changes.0"),
    (T.RECTIFICATION, {"changes": [_change(field="")]}, "details.changes.0.field"),
    (T.RECTIFICATION, {"changes": [_change(field="  ")]}, "details.changes.0.field"),
    (T.RECTIFICATION, {"changes": [_change(field=None)]}, "details.changes.0.field"),
    (T.RECTIFICATION, {"changes": [_change(field="f" * 101)]}, "details.changes.0.field"),
    (T.RECTIFICATION, {"changes": [_change(requestedValue=None)]}, "details.changes.0.requestedValue"),
    (T.RECTIFICATION, {"changes": [_change(requestedValue="")]}, "details.changes.0.requestedValue"),
    (T.RECTIFICATION, {"changes": [_change(requestedValue=42)]}, "details.changes.0.requestedValue"),
    (T.RECTIFICATION, {"changes": [_change(requestedValue="v" * 1001)]}, "details.changes.0.requestedValue"),
    (T.RECTIFICATION, {"changes": [_change(), _change(requestedValue="x")]}, "details.changes.1.field"),
    (
        T.RECTIFICATION,
        {"changes": [_change(), _change(field="a", currentValue="same", requestedValue="same")]},
        "details.changes.1.requestedValue",
    ),
    (T.RECTIFICATION, {"changes": [_change(currentValue=["x"])]}, "details.changes.0.currentValue"),
    (T.RECTIFICATION, {"changes": [_change(oldValue="x")]}, "details.changes.0.oldValue"),
    (T.RECTIFICATION, {"changes": [_change()] * 51}, "details.changes"),
    # erasure: all xor categories
    (T.ERASURE, {}, "details.categories"),
    (T.ERASURE, {"all": False}, "details.categories"),
    (T.ERASURE, {"all": False, "categories": []}, "details.categories"),
    (T.ERASURE, {"all": True, "categories": ["orders"]}, "details.categories"),
    (T.ERASURE, {"all": "yes"}, "details.all"),
    (T.ERASURE, {"all": 1}, "details.all"),
    (T.ERASURE, {"categories": ["orders", "orders"]}, "details.categories.1"),
    (T.ERASURE, {"all": True, "fields": ["email"]}, "details.fields"),
    # restriction / objection: purposes required
    (T.RESTRICTION, {}, "details.purposes"),
    (T.RESTRICTION, {"purposes": []}, "details.purposes"),
    (T.RESTRICTION, {"purposes": [""]}, "details.purposes.0"),
    (T.OBJECTION, {"purposes": None}, "details.purposes"),
    (T.OBJECTION, {"purposes": ["analytics", None]}, "details.purposes.1"),
    (T.OBJECTION, {"categories": ["a"], "purposes": ["b"]}, "details.categories"),
    # consent revocation: optional purposes, well-formed when given
    (T.CONSENT_REVOCATION, {"purposes": "all"}, "details.purposes"),
    (T.CONSENT_REVOCATION, {"purposes": ["marketing_email", "marketing_email"]}, "details.purposes.1"),
]


@pytest.mark.parametrize(("request_type", "raw", "field"), INVALID)
def test_invalid_details_name_the_field(request_type: RequestType, raw: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_details(request_type, raw)
    assert field in [problem.field for problem in caught.value.problems]
    assert field in caught.value.message


def test_all_problems_are_reported_at_once() -> None:
    raw = {"changes": [_change(field=""), _change(requestedValue=None)], "extra": 1}
    with pytest.raises(ValidationFailed) as caught:
        validate_details(T.RECTIFICATION, raw)
    assert [p.field for p in caught.value.problems] == [
        "details.extra",
        "details.changes.0.field",
        "details.changes.1.requestedValue",
    ]


def test_prefix_follows_the_input_nesting() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_details(T.RESTRICTION, {}, prefix="input.details")
    assert caught.value.problems[0].field == "input.details.purposes"


def test_from_json_revalidates_stored_rows() -> None:
    with pytest.raises(ValidationFailed):
        ErasureDetails.from_json({"all": True, "categories": ["orders"]})


def test_every_type_has_a_details_class() -> None:
    for request_type in RequestType:
        assert validate_details(request_type, _minimal(request_type)).request_type is request_type


def _minimal(request_type: RequestType) -> dict[str, Any]:
    minimal: dict[RequestType, dict[str, Any]] = {
        T.RECTIFICATION: {"changes": [_change()]},
        T.ERASURE: {"all": True},
        T.RESTRICTION: {"purposes": ["p"]},
        T.OBJECTION: {"purposes": ["p"]},
    }
    return minimal.get(request_type, {})


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (" Please hurry. ", "Please hurry."),
        ("x" * NOTE_MAX_LENGTH, "x" * NOTE_MAX_LENGTH),
    ],
)
def test_valid_notes(note: str | None, expected: str | None) -> None:
    assert validate_note(note) == expected


@pytest.mark.parametrize("note", ["x" * (NOTE_MAX_LENGTH + 1), 12])
def test_invalid_notes(note: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_note(note)
    assert caught.value.problems[0].field == "note"


# --- enums: the public contract ------------------------------------------------------------------


def test_enum_values_are_the_public_contract() -> None:
    assert [t.value for t in RequestType] == [
        "ACCESS",
        "PORTABILITY",
        "RECTIFICATION",
        "ERASURE",
        "RESTRICTION",
        "OBJECTION",
        "CONSENT_REVOCATION",
    ]
    assert [s.value for s in RequestStatus] == [
        "SUBMITTED",
        "AWAITING_VERIFICATION",
        "PENDING_REVIEW",
        "IN_PROGRESS",
        "AWAITING_SUBJECT",
        "COMPLETED",
        "REJECTED",
        "CANCELLED",
        "FAILED",
    ]
    assert {"IDENTITY_NOT_VERIFIED", "MANIFESTLY_UNFOUNDED", "EXCESSIVE", "OTHER"} <= set(RejectionReason)


@pytest.mark.parametrize(
    ("status", "is_open"),
    [
        (RequestStatus.SUBMITTED, True),
        (RequestStatus.AWAITING_VERIFICATION, True),
        (RequestStatus.PENDING_REVIEW, True),
        (RequestStatus.IN_PROGRESS, True),
        (RequestStatus.AWAITING_SUBJECT, True),
        (RequestStatus.FAILED, True),
        (RequestStatus.COMPLETED, False),
        (RequestStatus.REJECTED, False),
        (RequestStatus.CANCELLED, False),
    ],
)
def test_open_and_terminal(status: RequestStatus, is_open: bool) -> None:
    assert status.is_open is is_open
    assert status.is_terminal is not is_open
