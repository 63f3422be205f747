"""Bearer credentials -> Principal: JWTs (HS256 secret or an identity provider's JWKS) and API keys."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from dsr_gateway.domain.principal import Principal, PrincipalKind, Role

ApiKeyLookup = Callable[[str], Awaitable[Principal | None]]
API_KEY_CACHE_SECONDS = 30.0
# A verified token is remembered (never past its `exp`), so a client's every request skips the signature
# check; JWKS key rotation takes effect within this time.
JWT_CACHE_SECONDS = 60.0
CACHE_ENTRIES = 10_000
ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
logger = logging.getLogger("dsr_gateway.auth")
UNKNOWN_KID_REFRESH_SECONDS = 60.0
# While the identity provider cannot be reached, the keys in hand stay in use; try again this often.
STALE_RETRY_SECONDS = 30.0


class AuthenticationFailed(Exception):
    """The credential is bad, expired or revoked. The message is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class JwtConfig:
    secret: str | None
    jwks_url: str | None
    audience: str | None
    issuer: str | None
    jwks_cache_seconds: float = 600.0


class JwksKeys:
    """An identity provider's public keys, cached, fetched again when a token names an unknown `kid`."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    def _age(self) -> float:
        return float("inf") if self._fetched_at is None else self._clock() - self._fetched_at

    async def key(self, kid: str | None) -> PyJWK:
        fresh = self._age() < self._cache_seconds
        if not fresh or kid not in self._keys:
            await self._refresh(force=fresh)
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid is None or kid not in self._keys:
            raise AuthenticationFailed(
                "The token is signed with a key the identity provider does not publish."
            )
        return self._keys[kid]

    async def _refresh(self, force: bool) -> None:
        async with self._lock:
            # Another caller may have refreshed while we waited; an unknown kid may refresh once a minute.
            if force and self._age() < UNKNOWN_KID_REFRESH_SECONDS:
                return
            if not force and self._age() < self._cache_seconds:
                return
            try:
                response = await self._client.get(self._url, timeout=5.0)
                response.raise_for_status()
                keyset = PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                if not self._keys:
                    raise AuthenticationFailed(
                        "The identity provider's keys could not be fetched; try again."
                    ) from exc
                # An outage of the identity provider should not sign everybody out: keep the keys we
                # have (a key it has since withdrawn stays trusted until it answers again).
                logger.warning(
                    "could not refresh the identity provider's keys (%s); using the %d keys in hand, "
                    "retrying in %.0f s",
                    type(exc).__name__,
                    len(self._keys),
                    STALE_RETRY_SECONDS,
                )
                self._fetched_at = self._clock() - self._cache_seconds + STALE_RETRY_SECONDS
                return
            self._keys = {k.key_id or "": k for k in keyset.keys}
            self._fetched_at = self._clock()


class Authenticator:
    def __init__(self, config: JwtConfig, api_keys: ApiKeyLookup, jwks: JwksKeys | None = None) -> None:
        self._config = config
        self._api_keys = api_keys
        self._jwks = jwks
        self._key_cache: dict[str, tuple[float, Principal | None]] = {}
        self._jwt_cache: dict[str, tuple[float, float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            return Principal.anonymous()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("Send credentials as 'Authorization: Bearer <token>'.")
        token = token.strip()
        if token.startswith("dsr_"):
            return await self._api_key(token)
        return await self._jwt(token)

    async def _jwt(self, token: str) -> Principal:
        now = time.monotonic()
        cached = self._jwt_cache.get(token)
        if cached is not None and now < cached[0] and time.time() < cached[1]:
            return cached[2]
        claims = await self._verify_jwt(token)
        principal = principal_from_claims(claims)
        if len(self._jwt_cache) >= CACHE_ENTRIES:
            self._jwt_cache.clear()
        self._jwt_cache[token] = (now + JWT_CACHE_SECONDS, float(claims["exp"]), principal)
        return principal

    async def _api_key(self, key: str) -> Principal:
        # A short cache keeps the hot path off the database; revocation takes effect within it.
        now = time.monotonic()
        cached = self._key_cache.get(key)
        if cached is None or now - cached[0] > API_KEY_CACHE_SECONDS:
            cached = (now, await self._api_keys(key))
            if len(self._key_cache) > CACHE_ENTRIES:
                self._key_cache.clear()
            self._key_cache[key] = cached
        if cached[1] is None:
            raise AuthenticationFailed("The API key is unknown or has been revoked.")
        return cached[1]

    async def _verify_jwt(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("The bearer token is not a valid JWT.") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._config.secret:
            key, algorithms = self._config.secret, ["HS256"]
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            jwk = await self._jwks.key(header.get("kid"))
            # Only the algorithm of the key the kid names: an RSA key never verifies an ES256 token.
            if jwk.algorithm_name != algorithm:
                raise AuthenticationFailed(
                    f"The token says {algorithm!r} but its key is for {jwk.algorithm_name!r}."
                )
            key, algorithms = jwk.key, [algorithm]
        else:
            raise AuthenticationFailed(f"Tokens signed with {algorithm!r} are not accepted here.")
        options = {"require": ["exp", "sub"], "verify_aud": self._config.audience is not None}
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._config.audience,
                issuer=self._config.issuer,
                options=options,  # type: ignore[arg-type]
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationFailed("The token has expired; sign in again.") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationFailed("The token was issued for another audience.") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationFailed(
                "The token was issued by an issuer this gateway does not trust."
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationFailed(f"The token lacks the {exc.claim!r} claim.") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("The token's signature or claims are invalid.") from exc
        return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """`roles` make staff, `scope` makes an API client, otherwise `sub` is a subject's external id."""
    subject = str(claims["sub"])
    if not subject.strip():
        raise AuthenticationFailed("The token lacks the 'sub' claim.")
    raw_roles = _names(claims.get("roles"))
    roles = frozenset(Role(r) for r in raw_roles if r in {m.value for m in Role})
    if roles:
        return Principal(PrincipalKind.STAFF, id=subject, roles=roles, name=claims.get("name"))
    scopes = _names(claims.get("scope"))
    if scopes:
        return Principal(PrincipalKind.API_CLIENT, id=subject, scopes=frozenset(scopes))
    if raw_roles:
        raise AuthenticationFailed("The token's roles are not roles this gateway knows (agent, admin).")
    return Principal(PrincipalKind.SUBJECT, id=subject)


def _names(value: Any) -> list[str]:
    """A space-separated string or a list of strings; anything else is a list of one unknown name."""
    if not value:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v]
    return [repr(value)]


def mint_token(
    secret: str,
    subject: str,
    *,
    roles: list[str] | None = None,
    scope: str | None = None,
    lifetime_seconds: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 token, for development and tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + lifetime_seconds}
    if roles:
        claims["roles"] = roles
    if scope:
        claims["scope"] = scope
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
