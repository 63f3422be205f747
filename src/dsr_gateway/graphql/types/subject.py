"""The subject as clients see it; each area adds its own fields (consents, requests ...)."""

from __future__ import annotations

import strawberry


@strawberry.type(description="A person whose permissions and requests the gateway keeps.")
class Subject:
    external_id: str = strawberry.field(description="The business's identifier of this person.")
