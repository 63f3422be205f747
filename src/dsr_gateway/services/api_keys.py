"""API keys for machine clients: shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from dsr_gateway.domain.errors import FieldProblem, NotFound, ValidationFailed
from dsr_gateway.domain.principal import Principal, PrincipalKind
from dsr_gateway.services.ports import ApiKeyRecord, Clock, UnitOfWorkFactory

KEY_PREFIX = "dsr_"
KNOWN_SCOPES = frozenset(
    {"consent:read", "consent:write", "requests:read", "requests:write", "export:read", "audit:read"}
)


def hash_api_key(key: str) -> str:
    # Keys are 256-bit random, so a plain SHA-256 is enough; no slow hash needed.
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    record: ApiKeyRecord
    key: str


class ApiKeyService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(self, name: str, scopes: Sequence[str]) -> CreatedApiKey:
        problems = []
        if not name.strip():
            problems.append(FieldProblem("name", "give the key a name"))
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if unknown:
            problems.append(
                FieldProblem(
                    "scopes", f"unknown {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}"
                )
            )
        if not scopes:
            problems.append(FieldProblem("scopes", "give at least one scope"))
        if problems:
            raise ValidationFailed(problems)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self._uow() as uow:
            if await uow.api_keys.name_taken(name):
                raise ValidationFailed.single("name", f"a key named {name!r} exists; pick another name")
            await uow.api_keys.add(name, key[:10], hash_api_key(key), sorted(set(scopes)), self._clock())
            await uow.commit()
            record = await uow.api_keys.find_active_by_hash(hash_api_key(key))
        assert record is not None
        return CreatedApiKey(record, key)

    async def list(self) -> Sequence[ApiKeyRecord]:
        async with self._uow() as uow:
            return await uow.api_keys.list_all()

    async def revoke(self, name: str) -> None:
        async with self._uow() as uow:
            if not await uow.api_keys.revoke(name, self._clock()):
                raise NotFound("active API key", name)
            await uow.commit()

    async def authenticate(self, key: str) -> Principal | None:
        async with self._uow() as uow:
            record = await uow.api_keys.find_active_by_hash(hash_api_key(key))
        if record is None:
            return None
        return Principal(
            PrincipalKind.API_CLIENT, id=str(record.id), scopes=frozenset(record.scopes), name=record.name
        )
