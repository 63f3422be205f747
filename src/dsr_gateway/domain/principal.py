"""Who is calling: a subject, a member of staff, an API client, the system itself, or nobody."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class PrincipalKind(StrEnum):
    ANONYMOUS = "ANONYMOUS"
    SUBJECT = "SUBJECT"
    STAFF = "STAFF"
    API_CLIENT = "API_CLIENT"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    # The subject's external id, the staff member's id, the API key's id, or "system".
    id: str | None = None
    roles: frozenset[Role] = frozenset()
    scopes: frozenset[str] = frozenset()
    name: str | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(PrincipalKind.ANONYMOUS)

    @classmethod
    def system(cls) -> Principal:
        return cls(PrincipalKind.SYSTEM, id="system")

    @property
    def is_staff(self) -> bool:
        return self.kind is PrincipalKind.STAFF and bool(self.roles)

    @property
    def is_admin(self) -> bool:
        return self.kind is PrincipalKind.STAFF and Role.ADMIN in self.roles

    def has_scope(self, scope: str) -> bool:
        return self.kind is PrincipalKind.API_CLIENT and scope in self.scopes

    def is_subject(self, external_id: str) -> bool:
        return self.kind is PrincipalKind.SUBJECT and self.id == external_id

    @property
    def actor_label(self) -> str:
        """How the actor is named in records: kind and id, never a name or an email."""
        return f"{self.kind.value.lower()}:{self.id or '-'}"
