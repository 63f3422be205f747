"""Bearer credentials -> Principal: HS256 tokens, an identity provider's JWKS, API keys.

The JWKS endpoint is an `httpx.MockTransport` serving keys generated here; API keys come from a lookup
function standing in for the service, so these tests do no I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dsr_gateway.domain.principal import Principal, PrincipalKind, Role
from dsr_gateway.http.auth import (
    AuthenticationFailed,
    Authenticator,
    JwksKeys,
    JwtConfig,
    mint_token,
    principal_from_claims,
)

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
JWKS_URL = "https://idp.example/.well-known/jwks.json"


def hs256(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    # Tokens are made when the tests are collected; a day of validity outlasts any test run.
    base = {"sub": "customer-1", "exp": int(time.time()) + 86_400}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, "HS256", headers=headers)


async def no_api_keys(key: str) -> Principal | None:
    return None


def authenticator(audience: str | None = None, issuer: str | None = None) -> Authenticator:
    return Authenticator(JwtConfig(SECRET, None, audience, issuer), no_api_keys)


async def refused(auth: Authenticator, header: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        await auth.authenticate(header)
    return str(caught.value)


# --- HS256 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"sub": "customer-1"}, Principal(PrincipalKind.SUBJECT, id="customer-1")),
        (
            {"roles": ["agent"]},
            Principal(PrincipalKind.STAFF, id="customer-1", roles=frozenset({Role.AGENT})),
        ),
        (
            {"sub": "ada", "roles": "agent admin", "name": "Ada"},
            Principal(PrincipalKind.STAFF, id="ada", roles=frozenset({Role.AGENT, Role.ADMIN}), name="Ada"),
        ),
        (
            {"sub": "boss", "roles": ["admin", "auditor"]},
            Principal(PrincipalKind.STAFF, id="boss", roles=frozenset({Role.ADMIN})),
        ),
        (
            {"sub": "crm", "scope": "consent:read consent:write"},
            Principal(
                PrincipalKind.API_CLIENT, id="crm", scopes=frozenset({"consent:read", "consent:write"})
            ),
        ),
        (
            {"sub": "crm", "scope": ["consent:read", "export:read"]},
            Principal(PrincipalKind.API_CLIENT, id="crm", scopes=frozenset({"consent:read", "export:read"})),
        ),
        ({"roles": []}, Principal(PrincipalKind.SUBJECT, id="customer-1")),
    ],
)
async def test_valid_hs256_claims_make_the_right_principal(
    claims: dict[str, Any], expected: Principal
) -> None:
    assert await authenticator().authenticate(f"Bearer {hs256(claims)}") == expected


def test_minted_tokens_carry_the_claims_the_authenticator_reads() -> None:
    token = mint_token(SECRET, "admin-1", roles=["admin"], audience="aud", issuer="iss")
    claims = jwt.decode(token, SECRET, ["HS256"], audience="aud", issuer="iss")
    assert principal_from_claims(claims).is_admin


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "Send credentials as 'Authorization: Bearer <token>'."),
        ("Bearer ", "Send credentials as 'Authorization: Bearer <token>'."),
        ("Bearer not-a-jwt", "The bearer token is not a valid JWT."),
        (f"Bearer {hs256({'exp': int(time.time()) - 3600})}", "The token has expired; sign in again."),
        (f"Bearer {hs256({}, secret='another-secret-that-is-also-long-enough')}", "signature or claims"),
        (f"Bearer {hs256({'sub': None})}", "The token lacks the 'sub' claim."),
        (f"Bearer {hs256({'sub': ''})}", "The token lacks the 'sub' claim."),
        (f"Bearer {hs256({'sub': 42})}", "signature or claims"),
        (f"Bearer {hs256({'exp': None})}", "The token lacks the 'exp' claim."),
        (f"Bearer {hs256({'nbf': int(time.time()) + 3600})}", "signature or claims"),
        (f"Bearer {hs256({'roles': ['superuser']})}", "roles are not roles this gateway knows"),
        (f"Bearer {hs256({'roles': 5})}", "roles are not roles this gateway knows"),
        (f"Bearer {hs256({'roles': [['admin']]})}", "roles are not roles this gateway knows"),
        (f"Bearer {hs256({'roles': {'admin': True}})}", "roles are not roles this gateway knows"),
    ],
    ids=[
        "basic",
        "empty",
        "garbage",
        "expired",
        "wrong-signature",
        "no-sub",
        "empty-sub",
        "numeric-sub",
        "no-exp",
        "not-yet-valid",
        "unknown-role",
        "roles-not-a-list",
        "roles-nested",
        "roles-object",
    ],
)
async def test_bad_tokens_are_refused_with_a_clear_message(header: str, message: str) -> None:
    assert message in await refused(authenticator(), header)


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_alg_none_is_refused() -> None:
    token = unsigned({"sub": "admin-1", "roles": ["admin"], "exp": int(time.time()) + 300})
    assert (
        await refused(authenticator(), f"Bearer {token}")
        == "Tokens signed with 'none' are not accepted here."
    )


async def test_hs256_is_refused_when_only_a_jwks_is_configured() -> None:
    keys = JwksKeys(
        JWKS_URL, httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))), 600
    )
    auth = Authenticator(JwtConfig(None, JWKS_URL, None, None), no_api_keys, keys)
    assert "'HS256' are not accepted" in await refused(auth, f"Bearer {hs256({})}")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "dsr", "iss": "https://idp.example/"}, None),
        ({"aud": ["other", "dsr"], "iss": "https://idp.example/"}, None),
        ({"aud": "other", "iss": "https://idp.example/"}, "The token was issued for another audience."),
        ({"iss": "https://idp.example/"}, "The token lacks the 'aud' claim."),
        ({"aud": "dsr", "iss": "https://evil.example/"}, "issuer this gateway does not trust"),
        ({"aud": "dsr"}, "The token lacks the 'iss' claim."),
    ],
)
async def test_audience_and_issuer_are_checked_when_configured(
    claims: dict[str, Any], message: str | None
) -> None:
    auth = authenticator(audience="dsr", issuer="https://idp.example/")
    header = f"Bearer {hs256(claims)}"
    if message is None:
        assert (await auth.authenticate(header)).id == "customer-1"
    else:
        assert message in await refused(auth, header)


async def test_no_credential_is_the_anonymous_principal() -> None:
    assert await authenticator().authenticate(None) == Principal.anonymous()
    assert await authenticator().authenticate("") == Principal.anonymous()


# --- JWKS ----------------------------------------------------------------------------------------


@dataclass
class IdentityProvider:
    """Serves a JWKS of keys made here; counts fetches; `keys` may change to model a rotation."""

    keys: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0
    down: bool = False  # answers 503, as during an outage
    now: float = 1_000_000.0

    def add_rsa(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_ec(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        entries = []
        for kid, private in self.keys.items():
            algorithm = (
                jwt.algorithms.RSAAlgorithm
                if isinstance(private, rsa.RSAPrivateKey)
                else jwt.algorithms.ECAlgorithm
            )
            entry = algorithm.to_jwk(private.public_key(), as_dict=True)
            entry.update(
                kid=kid, use="sig", alg="RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
            )
            entries.append(entry)
        return {"keys": entries}

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json=self.jwks())

    def token(self, kid: str, claims: dict[str, Any] | None = None, algorithm: str | None = None) -> str:
        private = self.keys[kid]
        if algorithm is None:
            algorithm = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
        body = {"sub": "customer-1", "exp": int(time.time()) + 300, **(claims or {})}
        return jwt.encode(body, private, algorithm, headers={"kid": kid})

    def clock(self) -> float:
        return self.now

    def authenticator(self, cache_seconds: float = 600) -> Authenticator:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        keys = JwksKeys(JWKS_URL, client, cache_seconds, clock=self.clock)
        return Authenticator(JwtConfig(None, JWKS_URL, None, None, cache_seconds), no_api_keys, keys)


@pytest.fixture
def idp() -> IdentityProvider:
    provider = IdentityProvider()
    provider.add_rsa("rsa-1")
    provider.add_ec("ec-1")
    return provider


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
async def test_jwks_tokens_are_verified_and_the_keys_cached(idp: IdentityProvider, kid: str) -> None:
    auth = idp.authenticator()
    for _ in range(3):
        principal = await auth.authenticate(f"Bearer {idp.token(kid, {'roles': ['agent']})}")
        assert principal.is_staff
    assert idp.fetches == 1


async def test_the_cache_expires(idp: IdentityProvider) -> None:
    auth = idp.authenticator(cache_seconds=600)
    # Distinct tokens (`jti`): a token verified once is remembered and needs no key at all.
    await auth.authenticate(f"Bearer {idp.token('rsa-1', {'jti': '1'})}")
    idp.now += 599
    await auth.authenticate(f"Bearer {idp.token('rsa-1', {'jti': '2'})}")
    assert idp.fetches == 1
    idp.now += 2
    await auth.authenticate(f"Bearer {idp.token('rsa-1', {'jti': '3'})}")
    assert idp.fetches == 2


async def test_an_identity_provider_outage_keeps_the_keys_in_hand(
    idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    auth = idp.authenticator(cache_seconds=600)
    await auth.authenticate(f"Bearer {idp.token('rsa-1', {'jti': '1'})}")
    idp.down = True
    idp.now += 601  # the cache has expired and the provider does not answer
    principal = await auth.authenticate(f"Bearer {idp.token('rsa-1', {'jti': '2'})}")
    assert principal.id == "customer-1"
    assert idp.fetches == 2
    assert "using the 2 keys in hand" in caplog.text
    # It is not asked again on every request, only every STALE_RETRY_SECONDS.
    await auth.authenticate(f"Bearer {idp.token('ec-1', {'jti': '3'})}")
    assert idp.fetches == 2
    idp.now += 31
    await auth.authenticate(f"Bearer {idp.token('rsa-1', {'jti': '4'})}")
    assert idp.fetches == 3
    # A key it never published is still refused, and it answers again later: fresh keys.
    idp.add_rsa("rsa-2")
    assert "does not publish" in await refused(auth, f"Bearer {idp.token('rsa-2', {'jti': '5'})}")
    idp.down = False
    idp.now += 61
    assert (await auth.authenticate(f"Bearer {idp.token('rsa-2', {'jti': '6'})}")).id == "customer-1"


async def test_an_unknown_kid_refreshes_the_keys(idp: IdentityProvider) -> None:
    auth = idp.authenticator()
    await auth.authenticate(f"Bearer {idp.token('rsa-1')}")
    idp.now += 120
    idp.add_rsa("rsa-2")  # the provider rotates its keys
    assert (await auth.authenticate(f"Bearer {idp.token('rsa-2')}")).id == "customer-1"
    assert idp.fetches == 2


async def test_an_unknown_kid_after_the_refresh_is_refused(idp: IdentityProvider) -> None:
    auth = idp.authenticator()
    await auth.authenticate(f"Bearer {idp.token('rsa-1')}")
    idp.now += 120
    stranger = IdentityProvider()
    stranger.add_rsa("rsa-9")
    message = await refused(auth, f"Bearer {stranger.token('rsa-9')}")
    assert message == "The token is signed with a key the identity provider does not publish."
    assert idp.fetches == 2
    # Unknown kids cannot make the gateway hammer the provider: at most one refresh a minute.
    for _ in range(5):
        await refused(auth, f"Bearer {stranger.token('rsa-9')}")
    assert idp.fetches == 2


async def test_the_first_unknown_kid_fetches_even_right_after_start(idp: IdentityProvider) -> None:
    idp.now = 5.0  # a freshly booted machine: the monotonic clock is near zero
    auth = idp.authenticator()
    assert (await auth.authenticate(f"Bearer {idp.token('ec-1')}")).id == "customer-1"
    assert idp.fetches == 1


@pytest.mark.parametrize(
    ("kid", "algorithm", "message"),
    [
        ("rsa-1", "ES256", "The token says 'ES256' but its key is for 'RS256'."),
        ("ec-1", "RS256", "The token says 'RS256' but its key is for 'ES256'."),
        ("rsa-1", "PS256", "Tokens signed with 'PS256' are not accepted here."),
        ("ec-1", "HS256", "Tokens signed with 'HS256' are not accepted here."),
    ],
)
async def test_a_token_whose_alg_does_not_match_its_key_is_refused(
    idp: IdentityProvider, kid: str, algorithm: str, message: str
) -> None:
    forger = IdentityProvider()
    (forger.add_ec if algorithm == "ES256" else forger.add_rsa)(kid)
    token = forger.token(kid, algorithm=algorithm) if algorithm != "HS256" else hs256({}, kid=kid)
    assert await refused(idp.authenticator(), f"Bearer {token}") == message


async def test_a_token_signed_by_another_key_with_a_known_kid_is_refused(idp: IdentityProvider) -> None:
    forger = IdentityProvider()
    forger.add_rsa("rsa-1")
    assert "signature or claims" in await refused(idp.authenticator(), f"Bearer {forger.token('rsa-1')}")


@pytest.mark.parametrize(
    "respond",
    [
        lambda r: httpx.Response(503),
        lambda r: httpx.Response(200, text="<html>"),
        lambda r: httpx.Response(200, json={"keys": "nope"}),
    ],
    ids=["503", "not-json", "not-a-keyset"],
)
async def test_an_unreachable_or_broken_jwks_is_a_401_not_a_crash(
    idp: IdentityProvider, respond: Callable[[httpx.Request], httpx.Response]
) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    auth = Authenticator(JwtConfig(None, JWKS_URL, None, None), no_api_keys, JwksKeys(JWKS_URL, client, 600))
    assert "could not be fetched" in await refused(auth, f"Bearer {idp.token('rsa-1')}")


# --- API keys ------------------------------------------------------------------------------------


@dataclass
class KeyStore:
    active: dict[str, Principal]
    lookups: int = 0

    async def lookup(self, key: str) -> Principal | None:
        self.lookups += 1
        return self.active.get(key)


CRM = Principal(PrincipalKind.API_CLIENT, id="7", scopes=frozenset({"consent:read"}), name="crm")


async def test_api_keys_are_looked_up_once_then_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore({"dsr_good": CRM})
    auth = Authenticator(JwtConfig(SECRET, None, None, None), store.lookup)
    now = [100.0]
    monkeypatch.setattr("dsr_gateway.http.auth.time.monotonic", lambda: now[0])
    for _ in range(3):
        assert await auth.authenticate("Bearer dsr_good") == CRM
    assert store.lookups == 1

    del store.active["dsr_good"]  # revoked
    assert await auth.authenticate("Bearer dsr_good") == CRM  # still cached
    now[0] += 31
    assert "unknown or has been revoked" in await refused(auth, "Bearer dsr_good")
    assert store.lookups == 2


async def test_an_unknown_api_key_is_refused() -> None:
    store = KeyStore({})
    auth = Authenticator(JwtConfig(SECRET, None, None, None), store.lookup)
    assert await refused(auth, "Bearer dsr_nope") == "The API key is unknown or has been revoked."
    assert await refused(auth, "Bearer dsr_nope") == "The API key is unknown or has been revoked."
    assert store.lookups == 1


# --- the cache of verified tokens ----------------------------------------------------------------


async def test_a_verified_token_is_remembered_but_never_past_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = authenticator()
    verified: list[str] = []
    verify = auth._verify_jwt

    async def counting(token: str) -> dict[str, Any]:
        verified.append(token)
        return await verify(token)

    monkeypatch.setattr(auth, "_verify_jwt", counting)
    expiry = int(time.time()) + 300
    token = hs256({"exp": expiry})
    first = await auth.authenticate(f"Bearer {token}")
    assert await auth.authenticate(f"Bearer {token}") == first
    assert len(verified) == 1
    # Past `exp` the cached principal is not served: the token is checked again.
    monkeypatch.setattr("dsr_gateway.http.auth.time.time", lambda: expiry + 1.0)
    await auth.authenticate(f"Bearer {token}")
    assert len(verified) == 2
    # A bad token is never remembered.
    forged = hs256({}, secret="another-secret-that-is-long-enough-0123456789")
    assert "signature" in await refused(auth, f"Bearer {forged}")
