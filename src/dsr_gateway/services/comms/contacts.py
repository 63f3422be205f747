"""Where the gateway writes to a subject about their consents, and in which language.

Subjects set their own (signed-in), staff anyone's, API clients with `consent:write` anyone's. The
address is stored encrypted; only a masked hint is ever shown. Without one, consent-area messages fall
back to the newest address the subject gave in a privacy request, else are stored as NO_ADDRESS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsr_gateway.domain.consent_rules import require_consent_write
from dsr_gateway.domain.errors import FieldProblem, ValidationFailed
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.privacy_requests import mask_email, normalise_email
from dsr_gateway.domain.subjects import validate_external_id
from dsr_gateway.services.ports import Cipher, Clock, UnitOfWorkFactory

LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True, slots=True)
class ContactDetails:
    external_id: str
    email_hint: str | None
    language: str | None


class ContactService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, cipher: Cipher) -> None:
        self._uow = uow
        self._clock = clock
        self._cipher = cipher

    async def set_details(
        self, principal: Principal, external_id: str, email: str | None, language: str | None
    ) -> ContactDetails:
        external_id = validate_external_id(external_id, "subjectId")
        require_consent_write(principal, external_id)
        problems: list[FieldProblem] = []
        normalised = None
        if email is not None and email.strip():
            try:
                normalised = normalise_email(email)
            except ValidationFailed as exc:
                problems.extend(exc.problems)
        if language is not None and language.strip() and not LANGUAGE.match(language.strip()):
            problems.append(FieldProblem("language", "give a language tag such as en, de or de-AT"))
        if problems:
            raise ValidationFailed(problems)
        tag = language.strip().replace("_", "-") if language and language.strip() else None
        hint = mask_email(normalised) if normalised else None
        now = self._clock()
        async with self._uow() as uow:
            subject = await uow.subjects.get_or_create(external_id, now)
            encrypted = self._cipher.encrypt(normalised) if normalised else None
            await uow.comms.set_contact(subject.id, encrypted, hint, tag, now)
            await uow.commit()
        return ContactDetails(external_id, hint, tag)
