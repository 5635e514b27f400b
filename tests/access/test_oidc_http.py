"""OpenID Connect tokens end to end, on each backend: a server with access control on trusts
a local stand-in for a Keycloak realm (discovery document and JWKS over HTTP); tokens take
the place of API keys in the access matrix, over HTTP, in $batch and at /api/v1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.access.test_matrix import OPERATIONS, OWNERSHIP, ROLES, expected, request_for
from tests.access.tokens import (
    AUDIENCE,
    Provider,
    SigningKey,
    ec_key,
    keycloak_claims,
    rsa_key,
    serve,
    sign,
)
from tests.access.world import World, build
from tests.support import Client


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with serve(Provider([rsa_key("realm-rs"), ec_key("realm-es")])) as p:
        yield p


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client], provider: Provider) -> World:
    world = build(new_client, oidc_issuer=provider.issuer, oidc_audience=AUDIENCE)
    rs, es = provider.keys
    # the same principals as the world's API keys, now as Keycloak tokens
    for who, roles, org, key in (
        ("admin", ("citytwin-admin",), None, rs),
        ("operator", ("citytwin-operator",), ["city"], es),
        ("reader", ("citytwin-reader",), ["city"], rs),
        ("utility", ("citytwin-operator",), ["utility"], rs),
    ):
        world.keys[who] = token(provider, key, roles, org, subject=f"user-{who}")
    return world


def token(
    provider: Provider,
    key: SigningKey,
    roles: tuple[str, ...],
    organization: object = None,
    subject: str = "someone",
) -> str:
    claims = keycloak_claims(provider.issuer, roles=roles, organization=organization)
    return sign(key, {**claims, "sub": subject})


@pytest.mark.parametrize("ownership", OWNERSHIP)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_tokens_in_the_access_matrix(
    world: World, role: str, operation: str, ownership: str
) -> None:
    method, url, body = request_for(world, operation, ownership)
    resp = world.request(role, method, url, body)
    assert resp.status_code == expected(role, operation, ownership), resp.text


def test_an_operator_token_writes_its_organisations_thing_a_reader_token_cannot(
    world: World, provider: Provider
) -> None:
    theirs = world.streams["other"]  # the utility's
    made = world.create("utility", f"Datastreams({theirs})/Observations", {"result": 7.5})
    seen = world.as_("utility", "GET", f"Observations({made})?$expand=Datastream($select=id)")
    assert seen["result"] == 7.5
    world.as_("operator", "POST", f"Datastreams({theirs})/Observations", {"result": 1}, 404)
    resp = world.request("reader", "POST", f"Datastreams({world.streams['own']})/Observations")
    assert resp.status_code == 403
    assert (
        "the token of user-reader of organisation city has the role reader"
        in (resp.json()["message"])
    )
    batch = {
        "requests": [
            {
                "id": "1",
                "method": "post",
                "url": f"Datastreams({theirs})/Observations",
                "body": {"result": 8.5},
            }
        ]
    }
    for who, status in (("utility", 201), ("reader", 403)):
        (answer,) = world.as_(who, "POST", "$batch", batch)["responses"]
        assert answer["status"] == status, answer


def test_unknown_organisation_is_403_with_the_reason(world: World, provider: Provider) -> None:
    rs = provider.keys[0]
    stranger = token(provider, rs, ("citytwin-operator",), ["bikeshare"])
    resp = world.client.get("Things", headers={"Authorization": f"Bearer {stranger}"})
    assert resp.status_code == 403
    assert "organisation 'bikeshare', which this platform does not know" in resp.json()["message"]
    orphan = token(provider, rs, ("citytwin-reader",))
    resp = world.client.get("Things", headers={"Authorization": f"Bearer {orphan}"})
    assert resp.status_code == 403
    assert "needs an organisation" in resp.json()["message"]


def test_a_token_without_a_known_role_is_public(world: World, provider: Provider) -> None:
    plain = token(provider, provider.keys[1], ("some-other-role",), ["city"])
    headers = {"Authorization": f"Bearer {plain}"}
    things = world.client.get("Things", headers=headers).json()["value"]
    assert [t["name"] for t in things] == ["open-thing"]
    resp = world.client.post(
        f"Datastreams({world.streams['open']})/Observations", json={"result": 1}, headers=headers
    )
    assert resp.status_code == 403


def test_bad_tokens_are_401_everywhere(world: World, provider: Provider) -> None:
    foreign = rsa_key("realm-rs")  # the provider's kid, another key
    forged = token(provider, foreign, ("citytwin-admin",))
    expired = sign(
        provider.keys[0],
        keycloak_claims(provider.issuer, roles=("citytwin-admin",), lifetime=-3600),
    )
    for bad in (forged, expired):
        headers = {"Authorization": f"Bearer {bad}"}
        for url in ("Things", "/api/v1/kpis/energy/balance"):
            resp = world.client.get(url, headers=headers)
            assert resp.status_code == 401, resp.text
    assert "expired" in resp.json()["message"]
    kpi = world.request("utility", "GET", "/api/v1/kpis/energy/balance")
    assert kpi.status_code == 200, kpi.text
    assert world.as_("admin", "GET", "Things?$count=true")["@iot.count"] >= 3


def test_keys_still_work_beside_tokens(world: World) -> None:
    from citytwin.access.keys import create_key

    storage = world.client.app.state.service.storage
    key = world.client.call(create_key(storage, "reader", "city", "beside tokens")).key
    resp = world.client.get("Things", headers={"X-API-Key": key})
    assert {t["name"] for t in resp.json()["value"]} >= {"city-thing", "open-thing"}
