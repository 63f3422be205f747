"""Privacy notices: versioned, immutable once published, in plain language."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from dsr_gateway.domain.errors import FieldProblem, ValidationFailed


@dataclass(frozen=True, slots=True)
class DataCategory:
    """What is collected, what it is used for, who gets it and how long it is kept."""

    key: str
    description: str
    purposes: tuple[str, ...]
    recipients: tuple[str, ...]
    retention: str


@dataclass(frozen=True, slots=True)
class NoticePurpose:
    """A purpose as the notice version states it, and whether this version changed it materially."""

    key: str
    title: str
    description: str
    material_change: bool


@dataclass(frozen=True, slots=True)
class Translation:
    language: str
    summary: str


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    summary: str
    data_categories: tuple[DataCategory, ...]
    purposes: tuple[NoticePurpose, ...]
    translations: tuple[Translation, ...] = ()
    policy_url: str | None = None


@dataclass(frozen=True, slots=True)
class PrivacyNotice:
    version: int
    summary: str
    data_categories: tuple[DataCategory, ...]
    purposes: tuple[NoticePurpose, ...]
    translations: tuple[Translation, ...]
    policy_url: str | None
    published_at: datetime
    published_by: str

    def purpose(self, key: str) -> NoticePurpose | None:
        return next((p for p in self.purposes if p.key == key), None)

    @property
    def material_purposes(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.purposes if p.material_change)


def validate_draft(draft: NoticeDraft, known_purposes: Collection[str]) -> NoticeDraft:
    """A notice refers only to existing purposes and says, in plain words, what happens to the data."""
    problems: list[FieldProblem] = []
    if not draft.summary.strip():
        problems.append(FieldProblem("summary", "write a plain-language summary of the notice"))
    if not draft.purposes:
        problems.append(FieldProblem("purposes", "a notice must state at least one purpose"))
    stated: set[str] = set()
    for index, purpose in enumerate(draft.purposes):
        if purpose.key not in known_purposes:
            problems.append(
                FieldProblem(f"purposes.{index}.key", f"no purpose {purpose.key!r}; create it first")
            )
        if purpose.key in stated:
            problems.append(FieldProblem(f"purposes.{index}.key", f"{purpose.key!r} is listed twice"))
        stated.add(purpose.key)
    if not draft.data_categories:
        problems.append(FieldProblem("dataCategories", "list the categories of personal data collected"))
    seen: set[str] = set()
    for index, category in enumerate(draft.data_categories):
        where = f"dataCategories.{index}"
        if not category.key.strip():
            problems.append(FieldProblem(f"{where}.key", "must not be blank"))
        elif category.key in seen:
            problems.append(FieldProblem(f"{where}.key", f"{category.key!r} is listed twice"))
        seen.add(category.key)
        if not category.retention.strip():
            problems.append(FieldProblem(f"{where}.retention", "say how long this data is kept"))
        for p_index, key in enumerate(category.purposes):
            if key not in stated:
                problems.append(
                    FieldProblem(f"{where}.purposes.{p_index}", f"{key!r} is not among the notice's purposes")
                )
    languages = [t.language for t in draft.translations]
    if len(set(languages)) != len(languages):
        problems.append(FieldProblem("translations", "each language may have one translation"))
    if problems:
        raise ValidationFailed(problems)
    return draft
