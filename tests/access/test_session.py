"""Browsers sign in with an API key and then hold a session token, never the key."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from citytwin.access.keys import create_key, revoke_key
from citytwin.access.tokens import issue
from citytwin.service import Service
from tests.access.world import World, build
from tests.support import Client

SESSION = "/api/v1/session"


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client]) -> World:
    return build(new_client)


@pytest.fixture(autouse=True)
def no_cookies(world: World) -> None:
    world.client.http.cookies.clear()  # each test starts as a browser that never signed in


def sign_in(world: World, key: str | None) -> httpx.Response:
    return world.client.post(SESSION, json={"key": key})


def own_thing(world: World, **kw: object) -> httpx.Response:
    return world.client.get(f"Things({world.things['own']})", **kw)  # type: ignore[arg-type]


def test_signing_in_gives_a_cookie_with_a_token_that_reads_as_the_key(world: World) -> None:
    key = world.keys["operator"]
    assert key is not None
    assert own_thing(world).status_code == 404  # anonymous: the city's Thing is hidden
    resp = sign_in(world, key)
    assert resp.status_code == 200, resp.text
    assert resp.json()["role"] == "operator"
    assert resp.json()["organisation"] == "city"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("citytwin_session=ctt_")
    assert key not in cookie  # the key itself never goes into the browser's cookie jar
    attributes = {a.strip().lower() for a in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    # the cookie alone now reads as the operator, for the STA and the domain API alike
    assert own_thing(world).status_code == 200
    who = world.client.get(SESSION).json()
    assert who["signedIn"] is True
    assert who["identity"].startswith("key:")
    # signing out forgets it
    out = world.client.delete(SESSION)
    assert out.status_code == 204
    assert 'citytwin_session=""' in out.headers["set-cookie"]
    world.client.http.cookies.clear()
    assert own_thing(world).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"key": "ct_not-a-key"}, 401, "not valid"),
        ({"key": ""}, 400, "name the API key"),
        ({}, 400, "name the API key"),
        ({"key": "ctt_1_99999999999_abc"}, 400, "not with a session token"),
    ],
)
def test_a_bad_sign_in_is_refused_and_sets_no_cookie(
    world: World, body: dict[str, str], status: int, words: str
) -> None:
    resp = world.client.post(SESSION, json=body)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["message"]
    assert "set-cookie" not in resp.headers


def test_a_body_that_is_not_json_is_a_400(world: World) -> None:
    resp = world.client.post(SESSION, content=b"key=ct_x")
    assert resp.status_code == 400
    assert "JSON" in resp.json()["message"]


def test_the_session_gives_the_page_a_token_for_mqtt_that_also_works_as_a_bearer(
    world: World,
) -> None:
    assert sign_in(world, world.keys["reader"]).status_code == 200
    who = world.client.get(SESSION).json()
    token = who["mqtt"]["password"]
    assert token.startswith("ctt_")
    world.client.http.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert own_thing(world, headers=bearer).status_code == 200  # the reader's own Thing
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    resp = own_thing(world, headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401
    assert "not valid" in resp.json()["message"]
    # a key in the cookie instead of a token is not taken: the request stays anonymous
    key = world.keys["reader"]
    assert own_thing(world, headers={"Cookie": f"citytwin_session={key}"}).status_code == 404


def test_revoking_the_key_ends_its_sessions(world: World) -> None:
    service: Service = world.client.app.state.service
    new = world.client.call(create_key(service.storage, "operator", "city", "tablet"))
    assert sign_in(world, new.key).status_code == 200
    token = world.client.get(SESSION).json()["mqtt"]["password"]
    assert own_thing(world).status_code == 200
    world.client.call(revoke_key(service.storage, new.id))
    # the browser falls back to anonymous and is told so; the token as a bearer is refused
    assert own_thing(world).status_code == 404
    who = world.client.get(SESSION)
    assert who.json()["signedIn"] is False
    assert 'citytwin_session=""' in who.headers["set-cookie"]
    resp = own_thing(world, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_an_expired_token_is_refused(world: World) -> None:
    service: Service = world.client.app.state.service
    key = world.keys["operator"]
    assert key is not None
    principal = world.client.call(service.authenticate(key))
    old = world.client.call(issue(service.storage, principal, ttl=60, now=1_000_000))
    resp = own_thing(world, headers={"Authorization": f"Bearer {old.value}"})
    assert resp.status_code == 401
    assert "expired" in resp.json()["message"]


def test_without_access_control_there_are_no_sessions(
    new_client: Callable[..., Client],
) -> None:
    client = new_client("open", auth="off")
    resp = client.post(SESSION, json={"key": "ct_x"})
    assert resp.status_code == 404
    assert "access control is off" in resp.json()["message"]
    assert "set-cookie" not in resp.headers
    assert client.get(SESSION).json() == {"accessControl": False, "signedIn": False}
