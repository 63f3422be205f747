"""The subject as clients see it; each area adds its own fields (consents, requests ...)."""

from __future__ import annotations

import strawberry

from dsr_gateway.graphql.types.request import PrivacyRequest, subject_privacy_requests


@strawberry.type(description="A person whose permissions and requests the gateway keeps.")
class Subject:
    external_id: str = strawberry.field(description="The business's identifier of this person.")
    privacy_requests: list[PrivacyRequest] = strawberry.field(
        resolver=subject_privacy_requests, description="Their privacy requests, newest first."
    )
