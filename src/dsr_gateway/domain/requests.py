"""Privacy-rights requests: their types, statuses, rejection reasons and type-specific details.

Details arrive as loose JSON from GraphQL or the database; `validate_details` is the one gate that turns
them into frozen values, reporting every problem with a dotted field path (`details.changes.0.field`)
so a form can point at the exact input. Whether a named purpose or data category exists is a question
for the services (it needs the catalogue); here we only check shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeAlias

from dsr_gateway.domain.errors import FieldProblem, ValidationFailed

JsonObject: TypeAlias = dict[str, Any]


class RequestType(StrEnum):
    """Public contract (api.md): never rename a value."""

    ACCESS = "ACCESS"
    PORTABILITY = "PORTABILITY"
    RECTIFICATION = "RECTIFICATION"
    ERASURE = "ERASURE"
    RESTRICTION = "RESTRICTION"
    OBJECTION = "OBJECTION"
    CONSENT_REVOCATION = "CONSENT_REVOCATION"


class RequestStatus(StrEnum):
    """Public contract (api.md): never rename a value. What may follow each one lives in workflow.py."""

    SUBMITTED = "SUBMITTED"
    AWAITING_VERIFICATION = "AWAITING_VERIFICATION"
    PENDING_REVIEW = "PENDING_REVIEW"
    IN_PROGRESS = "IN_PROGRESS"
    AWAITING_SUBJECT = "AWAITING_SUBJECT"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """Nothing can happen any more; the SLA clock is settled (met or missed)."""
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        """Still owed to the subject. FAILED is open: it can be retried and its deadline keeps running."""
        return self not in _TERMINAL


_TERMINAL = frozenset({RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.CANCELLED})


class RejectionReason(StrEnum):
    """Why a request is refused; the subject is told this code in plain words and their right to complain."""

    IDENTITY_NOT_VERIFIED = "IDENTITY_NOT_VERIFIED"
    MANIFESTLY_UNFOUNDED = "MANIFESTLY_UNFOUNDED"
    EXCESSIVE = "EXCESSIVE"
    LEGAL_EXEMPTION = "LEGAL_EXEMPTION"
    NOT_A_CUSTOMER = "NOT_A_CUSTOMER"
    DUPLICATE = "DUPLICATE"
    NOT_APPLICABLE_IN_JURISDICTION = "NOT_APPLICABLE_IN_JURISDICTION"
    OTHER = "OTHER"


NOTE_MAX_LENGTH = 2000
VALUE_MAX_LENGTH = 1000
FIELD_NAME_MAX_LENGTH = 100
MAX_ITEMS = 50
# Purpose and category keys look like `marketing_email`; permissive on purpose, the catalogue decides.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def validate_note(note: str | None, field: str = "note") -> str | None:
    """The subject's or agent's free text; blank means no note. Capped so it cannot carry a data dump."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise ValidationFailed.single(field, "Must be text.")
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationFailed.single(field, f"Must be at most {NOTE_MAX_LENGTH} characters.")
    return note or None


# --- the details, one frozen value per request type -------------------------------------------------


class _Details:
    """Shared `from_json`; each subclass names its `request_type` and writes its own `to_json`."""

    __slots__ = ()
    request_type: ClassVar[RequestType]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        details = validate_details(cls.request_type, data)
        assert isinstance(details, cls)  # the parser table maps each type to its own class
        return details


@dataclass(frozen=True, slots=True)
class AccessDetails(_Details):
    """Empty categories = everything we hold (the default under Art. 15)."""

    request_type: ClassVar[RequestType] = RequestType.ACCESS
    categories: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {"categories": list(self.categories)}


@dataclass(frozen=True, slots=True)
class PortabilityDetails(_Details):
    """Empty categories = all data the subject provided (Art. 20)."""

    request_type: ClassVar[RequestType] = RequestType.PORTABILITY
    categories: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {"categories": list(self.categories)}


@dataclass(frozen=True, slots=True)
class RectificationChange:
    """One field to correct. `current_value` is what the subject sees (None: blank or unknown to them),
    not the stored value: fulfilment records the real old value when it applies the change."""

    field: str
    current_value: str | None
    requested_value: str

    def to_json(self) -> JsonObject:
        return {
            "field": self.field,
            "currentValue": self.current_value,
            "requestedValue": self.requested_value,
        }


@dataclass(frozen=True, slots=True)
class RectificationDetails(_Details):
    request_type: ClassVar[RequestType] = RequestType.RECTIFICATION
    changes: tuple[RectificationChange, ...]

    def to_json(self) -> JsonObject:
        return {"changes": [change.to_json() for change in self.changes]}


@dataclass(frozen=True, slots=True)
class ErasureDetails(_Details):
    """Either everything (`all`) or named categories, never both: an ambiguous erasure is not fulfilled."""

    request_type: ClassVar[RequestType] = RequestType.ERASURE
    erase_all: bool
    categories: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {"all": self.erase_all, "categories": list(self.categories)}


@dataclass(frozen=True, slots=True)
class RestrictionDetails(_Details):
    request_type: ClassVar[RequestType] = RequestType.RESTRICTION
    purposes: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {"purposes": list(self.purposes)}


@dataclass(frozen=True, slots=True)
class ObjectionDetails(_Details):
    request_type: ClassVar[RequestType] = RequestType.OBJECTION
    purposes: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {"purposes": list(self.purposes)}


@dataclass(frozen=True, slots=True)
class ConsentRevocationDetails(_Details):
    """Empty purposes = revoke every consent: revoking must be as easy as giving (Art. 7(3))."""

    request_type: ClassVar[RequestType] = RequestType.CONSENT_REVOCATION
    purposes: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {"purposes": list(self.purposes)}


RequestDetails: TypeAlias = (
    AccessDetails
    | PortabilityDetails
    | RectificationDetails
    | ErasureDetails
    | RestrictionDetails
    | ObjectionDetails
    | ConsentRevocationDetails
)


def details_from_json(request_type: RequestType, data: Mapping[str, Any]) -> RequestDetails:
    """Stored JSON is re-validated: a row edited by hand must not slip a malformed request into fulfilment."""
    return validate_details(request_type, data, prefix="details")


# --- validation --------------------------------------------------------------------------------------


class _Problems:
    """Collects every problem so the subject fixes the form in one round trip."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(FieldProblem(field, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def validate_details(
    request_type: RequestType, raw: Mapping[str, Any] | None, *, prefix: str = "details"
) -> RequestDetails:
    """Turn raw type-specific details into a frozen value, or raise ValidationFailed naming each field."""
    request_type = RequestType(request_type)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValidationFailed.single(prefix, "Must be an object.")
    problems = _Problems()
    parser = _PARSERS[request_type]
    allowed = _ALLOWED_KEYS[request_type]
    for key in raw:
        if key not in allowed:
            expected = ", ".join(sorted(allowed)) or "no fields"
            problems.add(
                f"{prefix}.{key}", f"Unknown field for a {request_type} request; expected {expected}."
            )
    details = parser(raw, prefix, problems)
    problems.raise_if_any()
    return details


def _keys(
    raw: Mapping[str, Any], name: str, prefix: str, problems: _Problems, *, required: bool, what: str
) -> tuple[str, ...]:
    """A list of purpose or category keys: unique, well-formed, and non-empty when required."""
    path = f"{prefix}.{name}"
    value = raw.get(name)
    if value is None:
        value = []
    if not isinstance(value, list | tuple):
        problems.add(path, f"Must be a list of {what} keys.")
        return ()
    if required and not value:
        problems.add(path, f"Name at least one {what}.")
        return ()
    if len(value) > MAX_ITEMS:
        problems.add(path, f"Name at most {MAX_ITEMS} {what}s.")
        return ()
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _KEY.fullmatch(item):
            problems.add(f"{path}.{index}", f"Must be a {what} key such as `marketing_email`.")
        elif item in seen:
            problems.add(f"{path}.{index}", f"{item!r} is listed twice.")
        else:
            seen.add(item)
    return tuple(item for item in value if isinstance(item, str))


def _parse_access(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    return AccessDetails(_keys(raw, "categories", prefix, problems, required=False, what="data category"))


def _parse_portability(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    return PortabilityDetails(
        _keys(raw, "categories", prefix, problems, required=False, what="data category")
    )


def _parse_restriction(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    return RestrictionDetails(_keys(raw, "purposes", prefix, problems, required=True, what="purpose"))


def _parse_objection(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    return ObjectionDetails(_keys(raw, "purposes", prefix, problems, required=True, what="purpose"))


def _parse_consent_revocation(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    return ConsentRevocationDetails(_keys(raw, "purposes", prefix, problems, required=False, what="purpose"))


def _parse_erasure(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    erase_all = raw.get("all", False)
    if erase_all is None:
        erase_all = False
    if not isinstance(erase_all, bool):
        problems.add(f"{prefix}.all", "Must be true or false.")
        erase_all = False
    categories = _keys(raw, "categories", prefix, problems, required=False, what="data category")
    # A malformed list is already reported by _keys; "given" only asks whether the client tried.
    given = raw.get("categories") not in (None, [], ())
    if erase_all and given:
        problems.add(f"{prefix}.categories", "Either erase everything (all) or name categories, not both.")
    elif not erase_all and not given:
        problems.add(
            f"{prefix}.categories", "Name at least one data category, or set all to erase everything."
        )
    return ErasureDetails(erase_all=erase_all, categories=categories)


def _text(value: object, path: str, problems: _Problems, *, limit: int, allow_blank: bool) -> str:
    if not isinstance(value, str):
        problems.add(path, "Is required." if value is None else "Must be text.")
        return ""
    text = value.strip()
    if not text and not allow_blank:
        problems.add(path, "Must not be empty.")
    elif len(text) > limit:
        problems.add(path, f"Must be at most {limit} characters.")
    return text


def _parse_rectification(raw: Mapping[str, Any], prefix: str, problems: _Problems) -> RequestDetails:
    path = f"{prefix}.changes"
    value = raw.get("changes")
    if not isinstance(value, list | tuple) or not value:
        problems.add(path, "List at least one field to correct.")
        return RectificationDetails(changes=())
    if len(value) > MAX_ITEMS:
        problems.add(path, f"List at most {MAX_ITEMS} changes.")
        return RectificationDetails(changes=())
    changes: list[RectificationChange] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        here = f"{path}.{index}"
        if not isinstance(item, Mapping):
            problems.add(here, "Must be an object with field, currentValue and requestedValue.")
            continue
        for key in item:
            if key not in {"field", "currentValue", "requestedValue"}:
                problems.add(f"{here}.{key}", "Unknown field; expected field, currentValue, requestedValue.")
        field = _text(
            item.get("field"), f"{here}.field", problems, limit=FIELD_NAME_MAX_LENGTH, allow_blank=False
        )
        if field and field in seen:
            problems.add(f"{here}.field", f"{field!r} is listed twice; give one requested value per field.")
        seen.add(field)
        current: str | None = None
        if item.get("currentValue") is not None:
            current = _text(
                item["currentValue"],
                f"{here}.currentValue",
                problems,
                limit=VALUE_MAX_LENGTH,
                allow_blank=True,
            )
        requested = _text(
            item.get("requestedValue"),
            f"{here}.requestedValue",
            problems,
            limit=VALUE_MAX_LENGTH,
            allow_blank=False,
        )
        if requested and requested == current:
            problems.add(f"{here}.requestedValue", "Is the same as the current value; nothing to correct.")
        changes.append(RectificationChange(field=field, current_value=current, requested_value=requested))
    return RectificationDetails(changes=tuple(changes))


_PARSERS = {
    RequestType.ACCESS: _parse_access,
    RequestType.PORTABILITY: _parse_portability,
    RequestType.RECTIFICATION: _parse_rectification,
    RequestType.ERASURE: _parse_erasure,
    RequestType.RESTRICTION: _parse_restriction,
    RequestType.OBJECTION: _parse_objection,
    RequestType.CONSENT_REVOCATION: _parse_consent_revocation,
}

_ALLOWED_KEYS: dict[RequestType, frozenset[str]] = {
    RequestType.ACCESS: frozenset({"categories"}),
    RequestType.PORTABILITY: frozenset({"categories"}),
    RequestType.RECTIFICATION: frozenset({"changes"}),
    RequestType.ERASURE: frozenset({"all", "categories"}),
    RequestType.RESTRICTION: frozenset({"purposes"}),
    RequestType.OBJECTION: frozenset({"purposes"}),
    RequestType.CONSENT_REVOCATION: frozenset({"purposes"}),
}
