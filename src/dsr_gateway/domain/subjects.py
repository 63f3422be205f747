"""A subject as the gateway knows it: an internal id and the business's external id, nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dsr_gateway.domain.errors import ValidationFailed

EXTERNAL_ID_MAX = 255


@dataclass(frozen=True, slots=True)
class Subject:
    id: int
    external_id: str
    created_at: datetime


def validate_external_id(external_id: str, field: str = "externalId") -> str:
    if not external_id.strip():
        raise ValidationFailed.single(field, "give the subject's external id")
    if len(external_id) > EXTERNAL_ID_MAX:
        raise ValidationFailed.single(field, f"must be at most {EXTERNAL_ID_MAX} characters")
    return external_id
