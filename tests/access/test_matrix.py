"""Who may do what: every role x operation x ownership, over HTTP and inside $batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.access.world import World, build
from tests.support import Client
from tests.tasking_support import dim

ROLES = ("admin", "operator", "reader", "anonymous")
OPERATIONS = ("read", "create", "update", "delete", "task")
OWNERSHIP = ("own", "other", "open", "personal")
# the Datastreams the city's reader and operator, and anonymous requests, may read
READABLE = {
    "admin": set(OWNERSHIP),
    "operator": {"own", "open", "personal"},
    "reader": {"own", "open"},
    "anonymous": {"open"},
}
SUCCESS = {"read": 200, "create": 201, "update": 200, "delete": 200, "task": 201}


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client]) -> World:
    return build(new_client)


def expected(role: str, operation: str, ownership: str) -> int:
    """The status the city's principals get (the utility owns "other" and "open")."""
    if operation == "read":
        return 200 if ownership in READABLE[role] else 404
    if role in ("reader", "anonymous"):
        return 403  # refused before anything is looked up: nothing leaks
    if role == "admin" or ownership in ("own", "personal"):
        return SUCCESS[operation]
    return 404 if ownership == "other" else 403  # hidden, or visible but not its own


def request_for(world: World, operation: str, ownership: str) -> tuple[str, str, Any]:
    ds = world.streams[ownership]
    if operation == "read":
        return "GET", f"Datastreams({ds})", None
    if operation == "create":
        return "POST", f"Datastreams({ds})/Observations", {"result": 2.0}
    if operation == "update":
        return "PATCH", f"Datastreams({ds})", {"description": "changed"}
    if operation == "delete":
        return "DELETE", f"Observations({world.observation(ownership)})", None
    return "POST", f"TaskingCapabilities({world.capabilities[ownership]})/Tasks", dim()


@pytest.mark.parametrize("ownership", OWNERSHIP)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_over_http(world: World, role: str, operation: str, ownership: str) -> None:
    method, url, body = request_for(world, operation, ownership)
    resp = world.request(role, method, url, body)
    assert resp.status_code == expected(role, operation, ownership), resp.text
    if resp.status_code == 403:
        message = resp.json()["message"]
        assert "operator or admin role" in message or "another organisation" in message


@pytest.mark.parametrize("ownership", OWNERSHIP)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_inside_a_batch(world: World, role: str, operation: str, ownership: str) -> None:
    method, url, body = request_for(world, operation, ownership)
    part: dict[str, Any] = {"id": "1", "method": method.lower(), "url": url}
    if body is not None:
        part["body"] = body
    for requests in ([part], [{**part, "atomicityGroup": "g"}]):
        resp = world.request(role, "POST", "$batch", {"requests": requests})
        assert resp.status_code == 200, resp.text
        (answer,) = resp.json()["responses"]
        assert answer["status"] == expected(role, operation, ownership), answer
        if method == "DELETE" and answer["status"] == 200:
            return  # deleted: the change set cannot delete it again
        if method == "GET":
            return  # a change set holds writes only


def test_a_bad_or_revoked_key_is_401(world: World) -> None:
    resp = world.client.get("Things", headers={"Authorization": "Bearer nonsense"})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert world.client.get("Things", headers={"X-API-Key": "nonsense"}).status_code == 401
    from citytwin.access.keys import create_key, list_keys, revoke_key

    storage = world.client.app.state.service.storage
    new = world.client.call(create_key(storage, "reader", "city", "short-lived"))
    headers = {"X-API-Key": new.key}
    assert world.client.get("Things", headers=headers).status_code == 200
    world.client.call(revoke_key(storage, new.id))
    assert world.client.get("Things", headers=headers).status_code == 401
    listed = {k["id"]: k for k in world.client.call(list_keys(storage))}
    assert listed[new.id]["revoked"]
    assert listed[new.id]["organisation"] == "city"


def test_a_thing_belongs_to_its_creators_organisation(world: World) -> None:
    new = world.create("operator", "Things", {"name": "new", "description": "by the city"})
    assert world.as_("reader", "GET", f"Things({new})")["name"] == "new"
    world.as_("utility", "GET", f"Things({new})", status=404)
    world.as_("utility", "PATCH", f"Things({new})", {"name": "taken"}, status=404)


def test_operators_cannot_hang_data_under_anothers_thing(world: World) -> None:
    body = {
        "name": "sneaky",
        "description": "x",
        "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        "unitOfMeasurement": {"name": "n", "symbol": "n", "definition": "n"},
        "Thing": {"@iot.id": world.things["open"]},
        "Sensor": {"name": "s", "description": "s", "encodingType": "text/html", "metadata": "m"},
        "ObservedProperty": {"name": "p", "definition": "p", "description": "p"},
    }
    resp = world.request("operator", "POST", "Datastreams", body)
    assert resp.status_code == 403
    assert "another organisation" in resp.json()["message"]
    body["Thing"] = {"@iot.id": world.things["other"]}  # hidden: as if it did not exist
    resp = world.request("operator", "POST", "Datastreams", body)
    assert resp.status_code == 400
    assert "no Thing" in resp.json()["message"]


def test_only_admins_delete_shared_catalogue_entries(world: World) -> None:
    sensor = world.as_("operator", "GET", f"Datastreams({world.streams['own']})/Sensor")
    resp = world.request("operator", "DELETE", f"Sensors({sensor['@iot.id']})")
    assert resp.status_code == 403
    assert "admin role" in resp.json()["message"]


def test_layers_are_written_by_operators_only(world: World) -> None:
    layer = {"type": "FeatureCollection", "features": []}
    for who, status in (("anonymous", 403), ("reader", 403), ("operator", 201)):
        resp = world.request(who, "PUT", "/api/v1/layers/districts", layer)
        assert resp.status_code == status, resp.text
