"""Unsubscribe links for API clients to put in their own emails (RFC 8058 headers included)."""

from __future__ import annotations

from dataclasses import dataclass

from dsr_gateway.domain.consent import ANY
from dsr_gateway.domain.consent_rules import require_consent_check, scope_problems
from dsr_gateway.domain.errors import NotFound, ValidationFailed
from dsr_gateway.domain.principal import Principal
from dsr_gateway.domain.subjects import validate_external_id
from dsr_gateway.domain.unsubscribe import UnsubscribeClaims
from dsr_gateway.services.comms.ports import LinkMaker
from dsr_gateway.services.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    url: str
    list_unsubscribe: str
    list_unsubscribe_post: str


class LinkService:
    def __init__(self, uow: UnitOfWorkFactory, links: LinkMaker) -> None:
        self._uow = uow
        self._links = links

    async def unsubscribe_link(
        self, principal: Principal, external_id: str, purpose_key: str, topic: str | None, channel: str | None
    ) -> UnsubscribeLink:
        """Staff and API clients with `consent:read`; the purpose, topic and channel must exist."""
        require_consent_check(principal)
        external_id = validate_external_id(external_id, "subjectId")
        async with self._uow() as uow:
            purpose = await uow.purposes.get(purpose_key)
        if purpose is None:
            raise NotFound("purpose", purpose_key)
        problems = scope_problems("", purpose, topic or ANY, channel or ANY)
        if problems:
            raise ValidationFailed(problems)
        claims = UnsubscribeClaims(external_id, purpose.key, topic or None, channel or None)
        headers = self._links.headers(claims)
        return UnsubscribeLink(
            self._links.unsubscribe_url(claims), headers["List-Unsubscribe"], headers["List-Unsubscribe-Post"]
        )
