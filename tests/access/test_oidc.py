"""OpenID Connect token checks without a database: signatures, claims, the JWKS cache and
its refresh on an unknown key id, the mapping of Keycloak's claims to a role."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from citytwin.access import Role
from citytwin.access.keys import authenticate
from citytwin.access.oidc import (
    MAX_AGE,
    REFRESH_INTERVAL,
    Jwks,
    OidcConfig,
    OidcVerifier,
    looks_like_jwt,
    parse_role_map,
)
from citytwin.errors import ConfigurationError, Forbidden, Unauthorized, Unavailable
from citytwin.settings import load_settings
from tests.access.tokens import (
    AUDIENCE,
    Provider,
    SigningKey,
    ec_key,
    hmac_token,
    keycloak_claims,
    rsa_key,
    sign,
    unsigned_token,
)

ISSUER = "https://login.example.org/realms/city"
DISCOVERY = f"{ISSUER}/.well-known/openid-configuration"
CERTS = f"{ISSUER}/protocol/openid-connect/certs"


@pytest.fixture(scope="module")
def rsa() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture(scope="module")
def ec() -> SigningKey:
    return ec_key("ec-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stub(provider: Provider) -> httpx.MockTransport:
    """The provider's documents without a network; every request is recorded."""
    provider.issuer = ISSUER

    def handle(request: httpx.Request) -> httpx.Response:
        provider.requests.append(str(request.url))
        if str(request.url) == DISCOVERY:
            return httpx.Response(200, json=provider.discovery())
        if str(request.url) == CERTS:
            return httpx.Response(200, json=provider.jwks())
        return httpx.Response(404)

    return httpx.MockTransport(handle)


def verifier(
    provider: Provider, clock: Callable[[], float] = time.monotonic, **config: Any
) -> OidcVerifier:
    cfg = OidcConfig(issuer=ISSUER, audience=AUDIENCE, **config)
    return OidcVerifier(cfg, Jwks(cfg, stub(provider), clock))


def verify(v: OidcVerifier, token: str) -> Any:
    return asyncio.run(v.verify(token))


def refused(v: OidcVerifier, token: str, words: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verify(v, token)
    assert words in caught.value.message


def test_keycloak_shaped_token_maps_to_an_operator_of_its_organisation(
    rsa: SigningKey, ec: SigningKey
) -> None:
    provider = Provider([rsa, ec])
    v = verifier(provider)
    for key in (rsa, ec):
        claims = keycloak_claims(ISSUER, roles=("citytwin-operator",), organization=["utility"])
        identity = verify(v, sign(key, claims))
        assert identity.role is Role.OPERATOR
        assert identity.organisation == "utility"
        assert identity.subject == claims["sub"]
    # discovery first, then the JWKS it names, once for both tokens
    assert provider.requests == [DISCOVERY, CERTS]


def test_roles_organisations_and_their_shapes(rsa: SigningKey) -> None:
    v = verifier(Provider([rsa]))
    several = keycloak_claims(ISSUER, roles=("citytwin-reader", "citytwin-admin"))
    assert verify(v, sign(rsa, several)).role is Role.ADMIN  # the highest
    assert verify(v, sign(rsa, keycloak_claims(ISSUER))).role is Role.PUBLIC  # none maps
    with_attributes = keycloak_claims(ISSUER, organization={"city": {"id": "42"}})
    assert verify(v, sign(rsa, with_attributes)).organisation == "city"
    assert verify(v, sign(rsa, keycloak_claims(ISSUER, organization="city"))).organisation == (
        "city"
    )
    two = keycloak_claims(ISSUER, organization=["city", "utility"])
    with pytest.raises(Forbidden, match="must name one organisation"):
        verify(v, sign(rsa, two))
    # client roles, mapped by other names
    client = verifier(
        Provider([rsa]),
        role_claim="resource_access.citytwin.roles",
        role_map=parse_role_map("grid-operator=operator"),
        org_claim="org",
    )
    claims = keycloak_claims(
        ISSUER, resource_access={"citytwin": {"roles": ["grid-operator"]}}, org="utility"
    )
    identity = verify(client, sign(rsa, claims))
    assert (identity.role, identity.organisation) == (Role.OPERATOR, "utility")


def test_bad_signature_issuer_audience_and_times_are_refused(rsa: SigningKey) -> None:
    v = verifier(Provider([rsa]))
    claims = keycloak_claims(ISSUER, roles=("citytwin-operator",))
    forged = sign(SigningKey(rsa.kid, "RS256", rsa_key("x").private), claims)
    refused(v, forged, "not valid: Signature verification failed")
    good = sign(rsa, claims)
    head, body, signature = good.split(".")
    tampered = json.loads(_unb64(body))
    tampered["realm_access"]["roles"].append("citytwin-admin")
    refused(v, f"{head}.{_b64(json.dumps(tampered).encode())}.{signature}", "Signature")
    refused(v, sign(rsa, {**claims, "iss": "https://evil.example.org"}), "configured issuer")
    refused(v, sign(rsa, {**claims, "aud": "another-client"}), "not meant for this service")
    refused(v, sign(rsa, {k: w for k, w in claims.items() if k != "aud"}), "aud")
    now = int(time.time())
    refused(v, sign(rsa, {**claims, "exp": now - 120}), "expired")
    refused(v, sign(rsa, {**claims, "nbf": now + 120}), "not valid yet")
    # a clock a few seconds off is tolerated (leeway)
    assert verify(v, sign(rsa, {**claims, "exp": now - 5, "nbf": now + 5})).role is Role.OPERATOR
    refused(v, sign(rsa, {k: w for k, w in claims.items() if k != "exp"}), "exp")
    refused(v, "not.a.token", "not a valid JWT")


def test_none_and_hmac_with_the_public_key_are_refused(rsa: SigningKey) -> None:
    v = verifier(Provider([rsa]))
    claims = keycloak_claims(ISSUER, roles=("citytwin-admin",))
    refused(v, unsigned_token(claims, rsa.kid), "algorithm 'none' is not accepted")
    for secret in (rsa.public_pem(), json.dumps(rsa.jwk()).encode()):
        refused(v, hmac_token(secret, claims, rsa.kid), "algorithm 'HS256' is not accepted")
    # an RSA key is not used for an EC algorithm either
    refused(v, sign(ec_key(rsa.kid), claims), "does not fit its RSA key")


def test_unknown_key_id_fetches_the_jwks_again_but_not_every_time(rsa: SigningKey) -> None:
    clock = Clock()
    provider = Provider([rsa])
    v = verifier(provider, clock)
    claims = keycloak_claims(ISSUER, roles=("citytwin-reader",), organization=["city"])
    assert verify(v, sign(rsa, claims)).role is Role.READER
    assert v.jwks.fetches == 1
    rotated = rsa_key("rsa-2")
    provider.keys = [rsa, rotated]  # the issuer adds a key and signs with it
    clock.now += REFRESH_INTERVAL + 1
    assert verify(v, sign(rotated, claims)).role is Role.READER
    assert v.jwks.fetches == 2
    # made-up key ids right after: no new fetch, the token is refused
    for i in range(5):
        refused(v, sign(rsa_key(f"made-up-{i}"), claims), "is not among the issuer's keys")
    assert v.jwks.fetches == 2
    clock.now += REFRESH_INTERVAL + 1
    refused(v, sign(rsa_key("made-up-again"), claims), "is not among the issuer's keys")
    assert v.jwks.fetches == 3
    assert provider.requests.count(CERTS) == 3


def test_concurrent_requests_with_a_new_key_fetch_once(rsa: SigningKey) -> None:
    provider = Provider([rsa])
    v = verifier(provider)
    token = sign(rsa, keycloak_claims(ISSUER, roles=("citytwin-reader",)))

    async def many() -> list[Any]:
        return await asyncio.gather(*(v.verify(token) for _ in range(10)))

    assert {i.role for i in asyncio.run(many())} == {Role.READER}
    assert v.jwks.fetches == 1


def test_provider_problems_are_503_not_a_crash(rsa: SigningKey) -> None:
    provider = Provider([rsa])
    cfg = OidcConfig(issuer=ISSUER, audience=AUDIENCE)

    def wrong_issuer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**provider.discovery(), "issuer": "https://other"})

    v = OidcVerifier(cfg, Jwks(cfg, httpx.MockTransport(wrong_issuer)))
    token = sign(rsa, keycloak_claims(ISSUER))
    with pytest.raises(Unavailable, match="names the issuer"):
        verify(v, token)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    v = OidcVerifier(cfg, Jwks(cfg, httpx.MockTransport(down)))
    with pytest.raises(Unavailable, match="cannot read the OpenID provider"):
        verify(v, token)


def test_keys_outlive_an_issuer_that_is_away(rsa: SigningKey) -> None:
    clock = Clock()
    provider = Provider([rsa])
    cfg = OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=CERTS)
    up = [True]
    inner = stub(provider)

    async def handle(request: httpx.Request) -> httpx.Response:
        if not up[0]:
            raise httpx.ConnectError("connection refused")
        return await inner.handle_async_request(request)

    v = OidcVerifier(cfg, Jwks(cfg, httpx.MockTransport(handle), clock))
    token = sign(rsa, keycloak_claims(ISSUER, roles=("citytwin-reader",)))
    assert verify(v, token).role is Role.READER
    up[0] = False
    clock.now += MAX_AGE + 1
    assert verify(v, token).role is Role.READER  # the keys fetched before still serve
    assert v.jwks.fetches == 2
    assert verify(v, token).role is Role.READER
    refused(v, sign(rsa_key("made-up"), keycloak_claims(ISSUER)), "not among the issuer's keys")
    assert v.jwks.fetches == 2  # not again at once, not for an unknown key id either
    clock.now += REFRESH_INTERVAL + 1
    up[0] = True
    assert verify(v, token).role is Role.READER
    assert v.jwks.fetches == 3
    assert provider.requests == [CERTS, CERTS]


def test_configured_jwks_url_skips_discovery(rsa: SigningKey) -> None:
    provider = Provider([rsa])
    v = verifier(provider, jwks_url=CERTS)
    assert verify(v, sign(rsa, keycloak_claims(ISSUER))).role is Role.PUBLIC
    assert provider.requests == [CERTS]


def test_jwts_and_api_keys_are_told_apart() -> None:
    assert looks_like_jwt("eyJh.eyJz.c2ln")
    assert not looks_like_jwt("ct_Zm9vYmFyLWJhei1xdXV4LXRoaXMtaXMtYS1rZXk")
    assert not looks_like_jwt("a.b")


def test_settings() -> None:
    base = {"oidc_issuer": ISSUER}
    with pytest.raises(ConfigurationError, match="oidc_audience is needed"):
        load_settings(base, environ={})
    with pytest.raises(ConfigurationError, match="oidc_role_map"):
        load_settings({**base, "oidc_audience": "x", "oidc_role_map": "a=king"}, environ={})
    with pytest.raises(ConfigurationError, match="oidc_issuer"):
        load_settings({"oidc_issuer": "login.example.org", "oidc_audience": "x"}, environ={})
    env = {
        "CITYTWIN_OIDC_ISSUER": ISSUER,
        "CITYTWIN_OIDC_AUDIENCE": "citytwin",
        "CITYTWIN_OIDC_ROLE_MAP": "grid-operator=operator, planner=reader",
    }
    settings = load_settings(environ=env)
    verifier_ = OidcVerifier.from_settings(settings)
    assert verifier_ is not None
    assert verifier_.config.role_map == {"grid-operator": Role.OPERATOR, "planner": Role.READER}
    assert verifier_.config.leeway == 30.0
    assert OidcVerifier.from_settings(load_settings(environ={})) is None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_jwt_without_an_issuer_configured_is_401() -> None:
    token = sign(ec_key("k"), keycloak_claims(ISSUER, roles=("citytwin-admin",)))
    with pytest.raises(Unauthorized, match="accepts no OpenID Connect tokens"):
        asyncio.run(authenticate(None, token))  # type: ignore[arg-type]
