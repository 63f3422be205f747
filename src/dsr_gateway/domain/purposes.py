"""Purposes: the unit of consent, and the rules a purpose definition must follow."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from dsr_gateway.domain.errors import FieldProblem, ValidationFailed

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
KEY_RULE = "use 2-63 characters: lower-case letters, digits and underscores, starting with a letter"


class LegalBasis(StrEnum):
    CONSENT = "CONSENT"
    LEGITIMATE_INTEREST = "LEGITIMATE_INTEREST"
    CONTRACT = "CONTRACT"
    LEGAL_OBLIGATION = "LEGAL_OBLIGATION"


class ConsentMechanism(StrEnum):
    OPT_IN = "OPT_IN"
    OPT_OUT = "OPT_OUT"
    NOTICE_ONLY = "NOTICE_ONLY"


class PurposeCategory(StrEnum):
    MARKETING = "MARKETING"
    PRODUCT_UPDATES = "PRODUCT_UPDATES"
    THIRD_PARTY_SHARING = "THIRD_PARTY_SHARING"
    PROFILING = "PROFILING"
    ANALYTICS = "ANALYTICS"
    ESSENTIAL = "ESSENTIAL"


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    PHONE = "PHONE"
    POST = "POST"


@dataclass(frozen=True, slots=True)
class Topic:
    key: str
    title: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    title: str
    description: str
    legal_basis: LegalBasis
    mechanism: ConsentMechanism
    category: PurposeCategory
    channels: tuple[Channel, ...] = ()
    topics: tuple[Topic, ...] = ()
    recipients: tuple[str, ...] = ()
    reconfirm_after_days: int | None = None
    # Sale, sharing or targeted advertising: a Global Privacy Control signal opts out of it.
    gpc_opt_out: bool = False
    # The notice version whose publication last changed this purpose materially; older consents lapse.
    last_material_version: int | None = None
    version: int = 1
    topic_keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "topic_keys", frozenset(t.key for t in self.topics))

    @property
    def is_consentable(self) -> bool:
        """Whether subjects make a choice about it; notice-only purposes are just disclosed."""
        return self.mechanism is not ConsentMechanism.NOTICE_ONLY


def reconfirmation_cutoff(purpose: Purpose, at: datetime, grace: timedelta = timedelta(0)) -> datetime | None:
    """The latest `given_at` of a grant that is past the purpose's reconfirmation period (plus `grace`) at
    `at`: a grant lapses when given_at + period + grace <= at. None: the purpose sets no period."""
    if purpose.reconfirm_after_days is None:
        return None
    return at - timedelta(days=purpose.reconfirm_after_days) - grace


def validate_purpose(purpose: Purpose) -> Purpose:
    """Raise ValidationFailed naming every field that breaks a rule; return the purpose unchanged."""
    problems: list[FieldProblem] = []
    if not KEY_PATTERN.match(purpose.key):
        problems.append(FieldProblem("key", KEY_RULE))
    _require_text(problems, "title", purpose.title, 200)
    _require_text(problems, "description", purpose.description, 4000)
    if purpose.mechanism is ConsentMechanism.OPT_IN and purpose.legal_basis is not LegalBasis.CONSENT:
        problems.append(
            FieldProblem("mechanism", "OPT_IN is the mechanism of consent; set legalBasis to CONSENT")
        )
    if purpose.legal_basis is LegalBasis.CONSENT and purpose.mechanism is not ConsentMechanism.OPT_IN:
        problems.append(
            FieldProblem("mechanism", "a purpose based on CONSENT needs an explicit opt-in (OPT_IN)")
        )
    if len(set(purpose.channels)) != len(purpose.channels):
        problems.append(FieldProblem("channels", "each channel may be listed once"))
    problems.extend(_topic_problems(purpose.topics))
    if any(not r.strip() for r in purpose.recipients):
        problems.append(FieldProblem("recipients", "recipients must not be blank"))
    if purpose.reconfirm_after_days is not None and not 1 <= purpose.reconfirm_after_days <= 3660:
        problems.append(FieldProblem("reconfirmAfterDays", "must be between 1 and 3660 days"))
    if problems:
        raise ValidationFailed(problems)
    return purpose


def _topic_problems(topics: Sequence[Topic]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for index, topic in enumerate(topics):
        if not KEY_PATTERN.match(topic.key):
            problems.append(FieldProblem(f"topics.{index}.key", KEY_RULE))
        elif topic.key in seen:
            problems.append(FieldProblem(f"topics.{index}.key", f"topic {topic.key!r} is listed twice"))
        seen.add(topic.key)
        _require_text(problems, f"topics.{index}.title", topic.title, 200)
    return problems


def _require_text(problems: list[FieldProblem], name: str, value: str, limit: int) -> None:
    if not value.strip():
        problems.append(FieldProblem(name, "must not be blank"))
    elif len(value) > limit:
        problems.append(FieldProblem(name, f"must be at most {limit} characters"))
